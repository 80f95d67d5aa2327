import Foundation
import NATSClient
import NodeNATS
import TestSupport
import Testing

/// One insert of the application during the rolling upgrade: its row, the node it wrote to, and when
/// (ms since 1970, read by the application's shell just after the insert returned).
struct ApplicationWrite {
    var row: Int
    var node: Int
    var at: Int64
}

/// One case of the embedded rolling upgrade: the shard stream's replicas, whether the application pauses
/// during each node's switch (the guide's mitigation), and whether the switched server's whole JetStream store
/// is moved aside rather than its cluster state (`$SYS`) alone.
struct EmbeddedUpgradeCase: Sendable, CustomTestStringConvertible {
    var replicas: Int
    var pauseWrites: Bool
    var moveWholeStore: Bool

    var testDescription: String {
        "replicas \(replicas), writes \(pauseWrites ? "paused" : "not paused") during each switch, \(moveWholeStore ? "whole store" : "$SYS") moved aside"
    }

    /// Replicas 3 is left out: with `$SYS` moved aside nats-server 2.9.10 crashed in a loop at the third switch,
    /// with the whole store moved aside the third switch hung in 1 of 2 runs (see the upgrade guide).
    static let all = [
        EmbeddedUpgradeCase(replicas: 1, pauseWrites: false, moveWholeStore: false),
        EmbeddedUpgradeCase(replicas: 1, pauseWrites: true, moveWholeStore: false),
    ]
}

/// When node `node` was switched: its upstream process stopped (`stopped`) and ours ready (`ready`).
struct NodeSwitch {
    var node: Int
    var stopped: Int64
    var ready: Int64
}

/// Where a write falls in the upgrade: before any switch, during node k's switch (upstream stopped, ours
/// not ready yet), or after node k's switch and before the next.
func upgradePhase(of at: Int64, switches: [NodeSwitch]) -> String {
    var phase = "before any switch"
    for step in switches {
        if at >= step.stopped, at < step.ready { return "during node \(step.node)'s switch" }
        if at >= step.ready { phase = "after node \(step.node)'s switch" }
    }
    return phase
}

/// The application's log lines `<row> <node> <ms>` (a failed insert says FAILED and is left out).
func applicationWrites(_ log: String) -> [ApplicationWrite] {
    log.split(separator: "\n").compactMap { line in
        let fields = line.split(separator: " ")
        guard fields.count == 3, let row = Int(fields[0]), let node = Int(fields[1]), let at = Int64(fields[2]) else { return nil }
        return ApplicationWrite(row: row, node: node, at: at)
    }
}

extension ProcessTests {
    @Suite(.serialized) struct UpstreamEmbeddedRollingUpgrade {
        static func query(_ database: String, _ sql: String) throws -> String {
            try runCommand("/usr/bin/sqlite3", ["-cmd", ".timeout 10000", database, sql]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// The rows of the shard stream, by the `<row>` marker in their (uncompressed) payloads, read by a
        /// consumer of the cluster's administrator on `port`.
        static func publishedRows(directory: String, port: Int, stream: String) throws -> Set<Int> {
            let secret = try ClusterSecret.load(at: directory + "/cluster.secret")
            let credentials = ClusterSecret.credentials(secret: secret, nodeID: 1)
            var settings = ConnectionSettings(urls: ["nats://127.0.0.1:\(port)"], name: "inspection")
            settings.userName = credentials.adminUser
            settings.userPassword = credentials.adminPassword
            settings.ignoreDiscoveredServers = true
            let connection = try NATSConnection.connect(settings)
            let consumer = try PullConsumer(connection: connection, stream: stream, durable: "test-inspection", afterSequence: 0)
            var rows = Set<Int>()
            while true {
                let messages = try consumer.fetch(maximum: 256, maximumBytes: 1 << 22, waitMilliseconds: 2000)
                if messages.isEmpty { break }
                for message in messages {
                    let text = String(decoding: message.payload, as: UTF8.self)
                    var rest = text[...]
                    while let open = rest.firstIndex(of: "<") {
                        let digits = rest[rest.index(after: open)...].prefix { $0.isNumber }
                        let after = rest.index(open, offsetBy: digits.count + 1)
                        if !digits.isEmpty, after < rest.endIndex, rest[after] == ">", let row = Int(digits) { rows.insert(row) }
                        rest = rest[rest.index(after: open)...]
                    }
                }
                consumer.acknowledge(through: messages.last!.sequence)
            }
            return rows
        }

        /// A 3-node upstream cluster with embedded NATS (three servers joined by `-cluster-addr`/
        /// `-cluster-peers`) upgraded to ours one node at a time while the application inserts on all three
        /// in turn: stop upstream, move its server's `jetstream/$SYS` (or whole store) aside, start ours, wait until ready.
        /// Every write is recorded with its node and time; at the end the missing rows are listed per node,
        /// per origin and per phase of the upgrade, with whether the shard stream ever held them.
        @Test(.enabled(if: UpstreamBinary.source != nil, Comment(rawValue: UpstreamBinary.absent)), arguments: EmbeddedUpgradeCase.all)
        func embeddedRollingUpgradeUnderLoad(_ shape: EmbeddedUpgradeCase) throws {
            let replicas = shape.replicas
            let directory = try TemporaryDirectory()
            let binary = try UpstreamBinary.install(in: directory)
            let databases = (1...3).map { "\(directory.path)/node\($0).db" }
            for database in databases {
                try makeDatabase(database, "CREATE TABLE books(id INTEGER PRIMARY KEY, title TEXT NOT NULL); PRAGMA journal_mode=WAL;")
            }
            let clientPorts = try (0..<3).map { _ in try freePort() }
            let routePorts = try (0..<3).map { _ in try freePort() }
            let upstream = try MixedCluster.startUpstreamEmbedded(
                binary, directory: directory, databases: databases, clientPorts: clientPorts,
                routePorts: routePorts, compress: false, replicas: replicas)
            defer { upstream.forEach { $0.stop() } }
            let total = 300
            let loopLog = directory.path + "/application.log"
            let application = try ServerUnderTest(
                "/bin/bash",
                [
                    "-c",
                    """
                    databases=('\(databases[0])' '\(databases[1])' '\(databases[2])')
                    for i in $(seq 1 \(total)); do
                      if [ -e '\(directory.path)/pause' ]; then echo PAUSED; while [ -e '\(directory.path)/pause' ]; do sleep 0.05; done; fi
                      n=$((i % 3))
                      if sqlite3 -cmd '.timeout 10000' "${databases[$n]}" "INSERT INTO books VALUES ($i, '<$i>');"; then echo "$i $((n + 1)) $(date +%s%3N)"; else echo "FAILED $i"; fi
                      sleep 0.03
                    done
                    echo DONE
                    """,
                ], log: loopLog)
            defer { application.stop() }
            func loopOutputCount(_ line: String) -> Int {
                ((try? String(contentsOfFile: loopLog, encoding: .utf8)) ?? "").split(separator: "\n").filter { $0 == line }.count
            }
            func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
            var nodes: [NodeUnderTest] = []
            defer { nodes.forEach { $0.terminate() } }
            var switches: [NodeSwitch] = []
            for index in 0..<3 {
                Thread.sleep(forTimeInterval: 3)
                let pauses = loopOutputCount("PAUSED")
                if shape.pauseWrites {
                    // The guide's mitigation: the application stops writing, and every node still running
                    // upstream has published what it captured (its global change log is empty).
                    FileManager.default.createFile(atPath: directory.path + "/pause", contents: nil)
                    let paused = try eventually(timeout: 30, interval: 0.05) {
                        try loopOutputCount("PAUSED") > pauses
                            && (index..<3).allSatisfy {
                                try Self.query(databases[$0], "SELECT count(*) FROM \"__harmonylite___change_log_global\"") == "0"
                            }
                    }
                    guard paused else { throw TestFailure("upstream's changes were not published before the switch") }
                }
                let stopped = now()
                upstream[index].stop()
                let store = "\(directory.path)/nats/harmonylite-node-\(index + 1)/jetstream"
                if shape.moveWholeStore {
                    try FileManager.default.moveItem(atPath: store, toPath: store + ".upstream")
                } else {
                    try FileManager.default.moveItem(atPath: store + "/$SYS", toPath: store + "/$SYS.upstream")
                }
                let toml = """
                    [snapshot]
                    enabled = false
                    [replication_log]
                    shards = 1
                    replicas = \(replicas)
                    compress = false
                    upstream_stream_names = true
                    publish_for_upstream = true
                    [nats]
                    \(MixedCluster.embeddedNATS(clientPort: clientPorts[index], directory: directory))
                    """
                let node = try NodeUnderTest(
                    nodeID: index + 1, toml: toml, arguments: MixedCluster.clusterArguments(index, routePorts: routePorts),
                    directory: directory, database: databases[index])
                nodes.append(node)
                try node.waitUntilReady(timeout: 120)
                switches.append(NodeSwitch(node: index + 1, stopped: stopped, ready: now()))
                // Ready means current with the meta leader: the next switch never leaves two servers without `$SYS`.
                #expect(node.log.contains("the embedded nats-server is current with the JetStream meta leader"), "\(node.log.suffix(3000))")
                try? FileManager.default.removeItem(atPath: directory.path + "/pause")
            }
            #expect(eventually(timeout: 180, interval: 0.25) { (try? String(contentsOfFile: loopLog, encoding: .utf8))?.contains("DONE") == true })
            let loopOutput = (try? String(contentsOfFile: loopLog, encoding: .utf8)) ?? ""
            #expect(!loopOutput.contains("FAILED"), "application writes failed: \(loopOutput.suffix(2000))")
            let writes = applicationWrites(loopOutput)
            _ = try eventually(timeout: 90, interval: 0.5) {
                try databases.allSatisfy { try Self.query($0, "SELECT count(*) FROM books") == "\(total)" }
            }
            let published = (try? Self.publishedRows(directory: directory.path, port: clientPorts[0], stream: "harmonylite-changes-1")) ?? []
            var report: [String] = [
                "\(shape.testDescription); switches (ms after the first write): "
                    + switches.map { "node \($0.node) stopped +\($0.stopped - (writes.first?.at ?? 0)) ready +\($0.ready - (writes.first?.at ?? 0))" }.joined(
                        separator: ", "),
                "the stream holds \(published.count) of \(total) rows",
            ]
            var lost = 0, missingButPublished = 0
            for (index, database) in databases.enumerated() {
                let present = Set(try Self.query(database, "SELECT id FROM books").split(separator: "\n").compactMap { Int($0) })
                let missing = writes.filter { !present.contains($0.row) }
                lost += missing.count
                missingButPublished += missing.filter { published.contains($0.row) }.count
                let groups = Dictionary(grouping: missing) { write in
                    "from node \(write.node) \(upgradePhase(of: write.at, switches: switches)), \(published.contains(write.row) ? "in the stream" : "never in the stream")"
                }
                report.append(
                    "node \(index + 1) lacks \(missing.count): " + groups.keys.sorted().map { "\($0): \(groups[$0]!.map(\.row))" }.joined(separator: "; "))
            }
            var failedPublishes: [Int] = []
            for index in 0..<3 {
                let log = (0...2).compactMap {
                    try? String(contentsOfFile: "\(directory.path)/upstream\(index + 1)\($0 == 0 ? "" : "-restart\($0)").log", encoding: .utf8)
                }.joined()
                let failed = log.split(separator: "\n").filter { $0.contains("Failed to publish for table") }
                failedPublishes.append(failed.count)
                report.append("upstream \(index + 1): \(failed.count) failed publish line(s)\(failed.prefix(2).map { "\n  " + $0 }.joined())")
            }
            print(report.joined(separator: "\n"))
            #expect(missingButPublished == 0, "a row the stream holds did not reach every node: \(report.joined(separator: "\n"))")
            if !shape.pauseWrites {
                // Upstream's own behaviour, not ours: every lost row was written on a node still running upstream,
                // never reached the stream, and its node logged one failed publish for it (and dropped it).
                let neverPublished = writes.filter { !published.contains($0.row) }
                #expect(
                    neverPublished.allSatisfy { write in switches.first { $0.node == write.node }.map { write.at < $0.stopped } ?? true },
                    "\(report.joined(separator: "\n"))")
                for index in 0..<3 {
                    #expect(failedPublishes[index] == neverPublished.filter { $0.node == index + 1 }.count, "\(report.joined(separator: "\n"))")
                }
                // No `lost > 0`: a loss needs a write on a node still running upstream while the stream's only
                // server is down, and the stream may live on the server switched last (upstream's writers gone).
                return
            }
            // Failed in 1 CI run of 4 and 2 local runs of 7 (2026-12-07) while a node said ready before its server was
            // current with the meta leader: two servers without `$SYS` then elected a leader without the stream, and the
            // set-up made a second, empty instance (docs/upgrading-from-harmonylite.md).
            #expect(lost == 0, "\(report.joined(separator: "\n"))\n\(nodes.map { $0.log.suffix(1500) }.joined(separator: "\n=====\n"))")
        }
    }
}
