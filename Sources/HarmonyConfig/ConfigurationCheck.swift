/// `harmonylite -config FILE -check-config`: what the configuration and the database it names would do,
/// decided from facts the command gathers (no I/O here): a short summary when the node could start, or each
/// problem named. Nothing is started and nothing is written.
public struct ConfigurationCheck: Sendable {
    /// What the command found about the database `db_path` names.
    public enum DatabaseFacts: Equatable, Sendable {
        /// It exists and SQLite read its schema: the tables that replicate, and the ones refused with why.
        case readable(replicated: [String], refused: [(name: String, reason: String)])
        /// It does not exist; `creatable`: its directory is writable, so the start creates it and restores it
        /// from the cluster's newest snapshot.
        case missing(creatable: Bool)
        /// It exists but cannot be opened or read (permissions, not a database, corrupt): why.
        case unreadable(String)

        public static func == (a: DatabaseFacts, b: DatabaseFacts) -> Bool {
            switch (a, b) {
            case (.readable(let r1, let f1), .readable(let r2, let f2)): r1 == r2 && f1.map(\.name) == f2.map(\.name) && f1.map(\.reason) == f2.map(\.reason)
            case (.missing(let c1), .missing(let c2)): c1 == c2
            case (.unreadable(let e1), .unreadable(let e2)): e1 == e2
            default: false
            }
        }
    }

    /// What `nats-server -t` said of `nats.server_config` (the embedded server's extra configuration).
    public enum ServerConfigFacts: Equatable, Sendable {
        /// No `server_config`, or no embedded server.
        case notSet
        case valid
        /// nats-server cannot parse it: what it said.
        case invalid(String)
        /// It could not be checked (no nats-server found): why.
        case unchecked(String)
    }

    /// Lines to print (summary, then warnings), and the problems: none means exit 0.
    public var lines: [String] = []
    public var problems: [String] = []

    public var passed: Bool { problems.isEmpty }

    /// The configuration did not load: every problem the loader found.
    public init(file: String, loadProblems: [ConfigurationError]) {
        problems = loadProblems.sorted { ($0.line ?? Int.max) < ($1.line ?? Int.max) }.map(\.description)
        lines = ["\(file): \(loadProblems.count) problem(s)"]
    }

    public init(
        file: String, configuration config: Configuration, warnings: [String], database: DatabaseFacts,
        serverConfig: ServerConfigFacts = .notSet
    ) {
        lines.append("\(file): the configuration loads")
        lines.append("node \(config.nodeID) (\(config.nodeName)), publish \(config.publish), replicate \(config.replicate)")
        switch database {
        case .readable(let replicated, let refused):
            lines.append(
                "database \(config.dbPath): \(replicated.count) table(s) replicate" + (replicated.isEmpty ? "" : ": " + replicated.joined(separator: ", ")))
            if replicated.isEmpty && refused.isEmpty {
                lines.append(
                    "  it has no tables: at start it takes schema and rows from the cluster's newest snapshot (or asks for one) when the streams hold changes")
            }
            for table in refused { lines.append("  warning: table \(table.name) does not replicate: \(table.reason)") }
        case .missing(let creatable):
            if !config.snapshot.enabled {
                problems.append(
                    "db_path: database \(config.dbPath) does not exist and snapshot.enabled = false: no snapshot can restore it (the start is refused)")
            } else if creatable {
                lines.append("database \(config.dbPath): does not exist; the start creates it and restores the cluster's newest snapshot (refused without one)")
            } else {
                problems.append("db_path: database \(config.dbPath) does not exist and its directory is not writable: the start cannot create it")
            }
        case .unreadable(let why):
            problems.append("db_path: database \(config.dbPath) cannot be read: \(why)")
        }
        lines.append("seq map \(config.seqMapPath)")
        let shards = max(1, config.replicationLog.shards)
        lines.append(
            "streams \(config.nats.streamPrefix)-1…\(shards) (\(shards) shard(s), \(config.replicationLog.effectiveReplicas) replica(s), max_entries \(config.replicationLog.maxEntries))"
        )
        if config.nats.isEmbedded {
            let cluster = config.clusterAddress.isEmpty ? "no cluster address" : "cluster \(config.clusterAddress), \(config.clusterPeers.count) peer(s)"
            lines.append(
                "NATS: embedded server (client \(config.nats.bindAddress), \(cluster)"
                    + (config.nats.leafListen.isEmpty ? "" : ", leaf \(config.nats.leafListen)")
                    + (config.leafServers.isEmpty ? "" : ", \(config.leafServers.count) leaf remote(s)") + ")")
        } else {
            lines.append("NATS: external \(config.nats.urls.joined(separator: ", "))")
        }
        lines.append(
            config.snapshot.enabled
                ? "snapshots: store \(config.snapshot.store), interval \(config.snapshot.interval == 0 ? "off (saved every half max_entries changes)" : "\(config.snapshot.interval) ms")"
                : "snapshots: disabled")
        switch serverConfig {
        case .notSet, .valid: break
        case .invalid(let said): problems.append("nats.server_config: nats-server cannot use \(config.nats.serverConfig): \(said)")
        case .unchecked(let why): lines.append("  warning: nats.server_config \(config.nats.serverConfig) was not checked: \(why)")
        }
        for warning in warnings { lines.append("  warning: \(warning)") }
        if passed { lines[0] = "\(file): the configuration is valid" }
    }

    /// The whole output: summary lines, then each problem on its own line.
    public var text: String {
        (lines + problems.map { "problem: \($0)" } + [passed ? "ok" : "\(problems.count) problem(s): the node would not start"]).joined(separator: "\n")
    }
}
