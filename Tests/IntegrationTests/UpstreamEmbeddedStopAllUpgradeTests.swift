import Foundation
import TestSupport
import Testing

/// What is moved aside on every node between stopping upstream and starting ours, in the all-at-once upgrade.
enum StopAllAside: String, Sendable, CustomTestStringConvertible {
    /// The server's cluster state, `jetstream/$SYS`, alone. Not a case of the test: nats-server 2.9.10 crashes in a
    /// loop on the stream assignment of upstream's `DenyDelete` stream (`processClusterCreateStream`, nil
    /// dereference), every node, never ready (tried once; see the upgrade guide).
    case clusterState
    /// The server's whole `jetstream` directory and upstream's seq map. The seq map must go too: our brokers
    /// create the streams anew, numbered from 1, and upstream's cursors point past them (with the store alone
    /// moved aside, tried once, every node had 70 of the 80 rows, and 75 of 95 after the new writes).
    case wholeStoreAndSeqMap

    var testDescription: String { rawValue }
}

extension ProcessTests {
    @Suite(.serialized) struct UpstreamEmbeddedStopAllUpgrade {
        static func query(_ database: String, _ sql: String) throws -> String {
            try runCommand("/usr/bin/sqlite3", ["-cmd", ".timeout 10000", database, sql]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        static func insert(_ database: String, _ rows: ClosedRange<Int>) throws {
            _ = try query(database, rows.map { "INSERT INTO books VALUES (\($0), '<\($0)>');" }.joined())
        }

        /// The guide's all-at-once upgrade of a 3-node upstream cluster with embedded NATS, `replicas = 3` and
        /// `compress = true` (as the seed guides set it): rows written on all three and replicated; more
        /// rows written just before and while every node is stopped (upstream's triggers record them as
        /// pending); every node stopped; `aside` moved aside on every node; ours started on all three.
        /// Every node must end with every row, nothing parked, and then new writes on each node reach the others.
        @Test(.enabled(if: UpstreamBinary.source != nil, Comment(rawValue: UpstreamBinary.absent)), arguments: [StopAllAside.wholeStoreAndSeqMap])
        func stopEveryNodeAndUpgradeThemAllAtOnce(_ aside: StopAllAside) throws {
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
                routePorts: routePorts, compress: true, replicas: 3)
            defer { upstream.forEach { $0.stop() } }
            // Rows on all three, replicated by upstream.
            for index in 0..<3 { try Self.insert(databases[index], (index * 100 + 1)...(index * 100 + 20)) }
            let replicated = try eventually(timeout: 60, interval: 0.25) {
                try databases.allSatisfy { try Self.query($0, "SELECT count(*) FROM books") == "60" }
            }
            let upstreamLogs = {
                (0..<3).map { String((try? String(contentsOfFile: "\(directory.path)/upstream\($0 + 1).log", encoding: .utf8))?.suffix(2000) ?? "") }.joined(
                    separator: "\n=====\n")
            }
            guard replicated else { throw TestFailure("upstream did not replicate the first rows:\n\(upstreamLogs())") }
            // More on node 1, then the guide's step 1: writes stop and every node applies what was published
            // (upstream polls every 500 ms). Without the wait, upstream sometimes published one of these just
            // before its stop, and a node that had not applied it yet never did: the stream is discarded in
            // step 3 (the guide says so). One CI run of 2026-12-07 had 79 rows of 80 on node 3 that way.
            try Self.insert(databases[0], 21...25)
            let settled = try eventually(timeout: 60, interval: 0.25) {
                try databases.allSatisfy { try Self.query($0, "SELECT count(*) FROM books") == "65" }
                    && databases.allSatisfy { try Self.query($0, "SELECT count(*) FROM \"__harmonylite___change_log_global\"") == "0" }
            }
            guard settled else { throw TestFailure("upstream did not replicate rows 21-25 (step 1):\n\(upstreamLogs())") }
            upstream.forEach { $0.stop() }
            // While every node is stopped, on all three: upstream's triggers record them as pending.
            for index in 0..<3 { try Self.insert(databases[index], (index * 100 + 31)...(index * 100 + 35)) }
            let pending = try databases.map { try Int(Self.query($0, "SELECT count(*) FROM \"__harmonylite___change_log_global\"")) ?? -1 }
            #expect(pending.allSatisfy { $0 >= 5 }, "pending upstream changes per node: \(pending)")
            for index in 0..<3 {
                let store = "\(directory.path)/nats/harmonylite-node-\(index + 1)/jetstream"
                switch aside {
                case .clusterState:
                    try FileManager.default.moveItem(atPath: store + "/$SYS", toPath: store + "/$SYS.upstream")
                case .wholeStoreAndSeqMap:
                    try FileManager.default.moveItem(atPath: store, toPath: store + ".upstream")
                    let seqMap = "\(directory.path)/node\(index + 1)-seq-map.cbor"
                    try FileManager.default.moveItem(atPath: seqMap, toPath: seqMap + ".upstream")
                }
            }
            let toml = { (index: Int) in
                """
                [snapshot]
                enabled = false
                [replication_log]
                shards = 1
                replicas = 3
                compress = true
                upstream_stream_names = true
                [nats]
                bind_address = "127.0.0.1:\(clientPorts[index])"
                cluster_secret_file = "\(directory.path)/cluster.secret"
                """
            }
            var nodes: [NodeUnderTest] = []
            defer { nodes.forEach { $0.terminate() } }
            for index in 0..<3 {
                nodes.append(
                    try NodeUnderTest(
                        nodeID: index + 1, toml: toml(index), arguments: MixedCluster.clusterArguments(index, routePorts: routePorts),
                        directory: directory, database: databases[index]))
                // The first node creates the cluster secret the others read.
                if index == 0 { _ = eventually(timeout: 30, interval: 0.05) { FileManager.default.fileExists(atPath: directory.path + "/cluster.secret") } }
            }
            let started = Date()
            for node in nodes { try node.waitUntilReady(timeout: 120) }
            print("\(aside): every node ready \(Int(Date().timeIntervalSince(started) * 1000)) ms after the first started")
            let ourLogs = { nodes.map { "\($0.database):\n" + $0.log.suffix(2500) }.joined(separator: "\n=====\n") }
            let everyRow = "SELECT count(*) FROM books"
            // 80 rows on every node: upstream's pending changes (rows x31–x35), only ever on their own node before, were published.
            let converged = try eventually(timeout: 60, interval: 0.25) { try databases.allSatisfy { try Self.query($0, everyRow) == "80" } }
            #expect(converged, "rows per node: \(databases.map { (try? Self.query($0, everyRow)) ?? "?" })\n\(ourLogs())")
            for database in databases {
                #expect(try Self.query(database, "SELECT count(*) FROM \"__harmonylite___parked\"") == "0")
                #expect(try Self.query(database, "SELECT count(*) FROM \"__harmonylite___meta\" WHERE key = 'upstream_takeover'") == "1")
                #expect(try Self.query(database, "SELECT count(*) FROM pragma_table_info('__harmonylite__books_change_log') WHERE name = 'state'") == "0")
            }
            // New writes on each node reach the others.
            for index in 0..<3 { try Self.insert(databases[index], (index * 100 + 51)...(index * 100 + 55)) }
            let after = try eventually(timeout: 60, interval: 0.25) { try databases.allSatisfy { try Self.query($0, everyRow) == "95" } }
            #expect(after, "rows per node: \(databases.map { (try? Self.query($0, everyRow)) ?? "?" })\n\(ourLogs())")
            let titles = "SELECT group_concat(id || title, ',') FROM (SELECT * FROM books ORDER BY id)"
            let first = try Self.query(databases[0], titles)
            for database in databases.dropFirst() { #expect(try Self.query(database, titles) == first) }
            for database in databases { #expect(try Self.query(database, "SELECT count(*) FROM \"__harmonylite___parked\"") == "0") }
        }
    }
}
