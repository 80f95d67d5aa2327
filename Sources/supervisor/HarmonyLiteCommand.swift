import ArgumentParser
import ChangeLog
import HarmonyConfig
import IPC
import Logging
import Logs
import SQLiteKit

#if canImport(Glibc)
import Glibc
#endif

/// `harmonylite`: HarmonyLite's command line (single-dash flags, as Go's `flag` package takes them; the
/// double-dash spellings work too).
@main
struct HarmonyLiteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "harmonylite",
        abstract: "Leaderless SQLite replication over NATS JetStream.",
        discussion: "Runs a node: a supervisor with capturer, applier, broker and snapshotter worker processes, "
            + "and the embedded nats-server when [nats] urls is empty.",
        helpNames: [.customLong("help", withSingleDash: true), .long, .short]
    )

    @Option(name: flag("config"), help: "TOML configuration file (empty: built-in defaults).")
    var config: String = ""

    @Option(name: flag("node-id"), help: "Node id, overriding node_id in the configuration (0: keep).")
    var nodeID: UInt64 = 0

    @Option(name: flag("cluster-addr"), help: "Embedded NATS cluster listen address (host:port).")
    var clusterAddress: String = ""

    @Option(name: flag("cluster-peers"), help: "Comma-separated NATS route URLs of the other embedded servers.")
    var clusterPeers: String = ""

    @Option(name: flag("leaf-servers"), help: "Comma-separated NATS leaf-node remotes (?hub=true for a hub); url1|url2 is one remote with a fallback server.")
    var leafServers: String = ""

    @Flag(name: flag("cleanup"), help: "Remove HarmonyLite's triggers and change-log tables from the database, then exit.")
    var cleanup = false

    @Flag(name: flag("save-snapshot"), help: "Take a snapshot, upload it, then exit.")
    var saveSnapshot = false

    @Flag(name: flag("parked"), help: "List the messages this node parked (could not apply), then exit.")
    var parked = false

    @Flag(name: flag("retry-parked"), help: "Ask the running node to apply its parked messages again now, then exit.")
    var retryParked = false

    @Flag(name: flag("schema-status"), help: "Print the local database's replicated tables and schema hash, then exit.")
    var schemaStatus = false

    @Flag(name: flag("schema-status-cluster"), help: "Print every node's schema from the schema registry, and whether they agree, then exit.")
    var schemaStatusCluster = false

    @Flag(name: flag("status"), help: "Print the running node's workers, streams, lag, pending and parked changes, snapshot and NATS state, then exit.")
    var status = false

    @Flag(name: flag("json"), help: "With -status: print it as JSON.")
    var json = false

    @Flag(name: flag("check-config"), help: "Check the configuration and the database it names without starting; exit 0 with a summary, 2 naming each problem.")
    var checkConfig = false

    @Flag(name: flag("version"), help: "Print the version and exit.")
    var version = false

    private static func flag(_ name: String) -> NameSpecification {
        [.customLong(name, withSingleDash: true), .customLong(name)]
    }

    func run() throws {
        if version {
            print(Version.line)
            return
        }
        let overrides = CommandLineOverrides(
            nodeID: nodeID == 0 ? nil : nodeID,
            clusterAddress: clusterAddress.isEmpty ? nil : clusterAddress,
            clusterPeers: clusterPeers.isEmpty ? nil : clusterPeers,
            leafServers: leafServers.isEmpty ? nil : leafServers
        )
        if checkConfig {
            guard !config.isEmpty else { fail("-check-config needs -config FILE", code: 2) }
            let (text, status) = CheckConfigCommand.run(path: config, overrides: overrides)
            print(text)
            throw ExitCode(status)
        }
        let loaded: LoadedConfiguration
        do {
            loaded = try ConfigurationLoader.load(path: config, overrides: overrides)
        } catch {
            let declared = ConfigurationLoader.declaredLogging(path: config)
            failConfiguration(error, format: declared?.format, nodeID: nodeID != 0 ? nodeID : declared?.nodeID ?? 0)
        }
        if cleanup { return runCleanup(loaded.configuration) }
        if saveSnapshot {
            do {
                print(try SaveSnapshotCommand.run(loaded.configuration))
                return
            } catch {
                fail("-save-snapshot: \(error)", code: 1)
            }
        }
        if parked || retryParked {
            do {
                print(try parked ? ParkedCommands.list(loaded.configuration) : ParkedCommands.requestRetry(loaded.configuration))
                return
            } catch {
                fail("\(parked ? "-parked" : "-retry-parked"): \(error)", code: 1)
            }
        }
        if schemaStatus || schemaStatusCluster {
            do {
                print(try schemaStatus ? SchemaStatusCommands.local(loaded.configuration) : SchemaStatusCommands.cluster(loaded.configuration))
                return
            } catch {
                fail("\(schemaStatus ? "-schema-status" : "-schema-status-cluster"): \(error)", code: 1)
            }
        }
        if status {
            do {
                print(try StatusCommand.run(loaded.configuration, json: json))
                return
            } catch {
                fail("-status: \(error)", code: 1)
            }
        }
        do {
            try loaded.configuration.checkCanStart()
        } catch {
            failConfiguration(error, format: loaded.configuration.logging.format, nodeID: loaded.configuration.nodeID)
        }
        let code = Supervisor.run(loaded)
        throw ExitCode(code)
    }

    private func runCleanup(_ configuration: Configuration) {
        do {
            let lock = try NodeLock.acquire(for: configuration)
            defer { lock.release() }
            let database = try SQLiteDatabase(existingPath: configuration.dbPath)
            // Rows held aside by UNIQUE settlement are the application's data, not ours: kept until read.
            let heldAside = (try? database.scalarInteger("SELECT count(*) FROM \(HarmonyLiteObjects.quoted(ChangeLogSchema.conflicts))")) ?? 0
            let removed = try HarmonyLiteObjects.removeAll(from: database, keeping: heldAside > 0 ? [ChangeLogSchema.conflicts] : [])
            print("removed \(removed.triggers) triggers and \(removed.tables) tables of HarmonyLite from \(configuration.dbPath)")
            if heldAside > 0 {
                print(
                    "kept \(ChangeLogSchema.conflicts): it holds \(heldAside) row(s) held aside by UNIQUE settlement (application data a later "
                        + "row's UNIQUE value kept out of its table); read them (columns losing_key, losing_values), then drop it by hand")
            }
        } catch {
            fail("-cleanup: \(error)", code: 1)
        }
    }
}

/// A configuration error, exit status 2: one JSON line (the node's log format) when the file asks for
/// `format = "json"` and parsed, so a log pipeline reading JSON takes it like every other line; plain text
/// otherwise (no logger exists yet, and a file that does not parse says no format).
func failConfiguration(_ error: ConfigurationError, format: String?, nodeID: UInt64 = 0) -> Never {
    guard format == "json" else { fail("configuration error: \(error)", code: 2) }
    let logger = Logger(label: "supervisor") { LineLogHandler(label: $0, format: .json, nodeID: nodeID, level: .info) }
    var metadata: Logger.Metadata = ["error": "\(error.message)"]
    if let file = error.file { metadata["file"] = "\(file)" }
    if let line = error.line { metadata["line"] = "\(line)" }
    if let key = error.key { metadata["key"] = "\(key)" }
    logger.critical("configuration error: nothing was started", metadata: metadata)
    exit(SupervisorExitCode.configuration)
}

func fail(_ message: String, code: Int32) -> Never {
    let line = "harmonylite: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(code)
}
