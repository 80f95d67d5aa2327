import Foundation
import TestSupport
import Testing

/// One case of the mixed-cluster matrix: how many of the three nodes run upstream HarmonyLite's binary
/// (the others run ours), whether every node runs its own server (embedded, joined as one cluster by
/// `-cluster-addr`/`-cluster-peers`) or all share one external nats-server, and `compress`.
struct MixedClusterCase: Sendable, CustomTestStringConvertible {
    var upstreamNodes: Int
    var embedded: Bool
    var compress: Bool

    var testDescription: String {
        "\(upstreamNodes) upstream + \(3 - upstreamNodes) ours, \(embedded ? "embedded" : "external") NATS, compress \(compress ? "on" : "off")"
    }

    static let all: [MixedClusterCase] = [1, 2].flatMap { upstream in
        [true, false].flatMap { embedded in [false, true].map { MixedClusterCase(upstreamNodes: upstream, embedded: embedded, compress: $0) } }
    }
}

/// Three nodes, the first `upstreamNodes` running upstream's binary and the rest ours, on one directory.
/// Every process is started before any is waited for (the cases share nothing but this shape).
final class MixedCluster {
    let directory: TemporaryDirectory
    let databases: [String]
    private(set) var upstream: [ServerUnderTest] = []
    private(set) var ours: [NodeUnderTest] = []
    private var nats: ServerUnderTest?
    private var upstreamArguments: [[String]] = []
    let shape: MixedClusterCase

    init(_ shape: MixedClusterCase, schema: String) throws {
        self.shape = shape
        let directory = try TemporaryDirectory()
        self.directory = directory
        databases = (1...3).map { "\(directory.path)/node\($0).db" }
        for database in databases { try makeDatabase(database, schema + "PRAGMA journal_mode=WAL;") }
        let binary = try UpstreamBinary.install(in: directory)
        let clientPorts = try (0..<3).map { _ in try freePort() }
        let routePorts = try (0..<3).map { _ in try freePort() }
        if !shape.embedded {
            nats = try ServerUnderTest(
                "/usr/sbin/nats-server", ["-js", "-a", "127.0.0.1", "-p", "\(clientPorts[0])", "-sd", directory.path + "/js"],
                log: directory.path + "/nats.log")
            guard nats!.waitForTCP(port: clientPorts[0]) else { throw TestFailure("nats-server did not start") }
        }
        func clusterArguments(_ index: Int) -> [String] { shape.embedded ? Self.clusterArguments(index, routePorts: routePorts) : [] }
        for index in 0..<shape.upstreamNodes {
            let config = directory.write(
                "upstream\(index + 1).toml",
                UpstreamBinary.config(
                    node: index + 1, database: databases[index], seqMap: "\(directory.path)/node\(index + 1)-seq-map.cbor", natsPort: clientPorts[0],
                    compress: shape.compress, embeddedPort: shape.embedded ? clientPorts[index] : nil))
            upstreamArguments.append(["-config", config] + clusterArguments(index))
            upstream.append(try ServerUnderTest(binary, upstreamArguments[index], log: "\(directory.path)/upstream\(index + 1).log"))
        }
        for index in shape.upstreamNodes..<3 {
            let nats =
                shape.embedded ? Self.embeddedNATS(clientPort: clientPorts[index], directory: directory) : "urls = [\"nats://127.0.0.1:\(clientPorts[0])\"]"
            ours.append(
                try NodeUnderTest(
                    nodeID: index + 1, toml: Self.ourTOML(compress: shape.compress, nats: nats),
                    arguments: clusterArguments(index), directory: directory, database: databases[index]))
        }
        for node in ours { try node.waitUntilReady(timeout: 90) }
        for (index, database) in databases.prefix(shape.upstreamNodes).enumerated() {
            var restarts = 0
            let installed = try eventually(timeout: 90, interval: 0.2) {
                // Upstream exits when a JetStream request times out while its cluster forms ("Unable to initialize
                // replicators: context deadline exceeded"): started again, as systemd's Restart= would.
                if !upstream[index].isRunning, restarts < 2 {
                    restarts += 1
                    upstream[index] = try ServerUnderTest(
                        binary, upstreamArguments[index], log: "\(directory.path)/upstream\(index + 1)-restart\(restarts).log")
                }
                return try ProcessTests.UpstreamMixedClusterTests.query(
                    database, "SELECT count(*) FROM sqlite_master WHERE name = '__harmonylite__books_change_log_on_insert'") == "1"
            }
            guard installed else { throw TestFailure("upstream node \(index + 1) did not install its triggers:\n\(upstreamLog(index))") }
        }
    }

    deinit { stop() }

    /// `-cluster-addr`/`-cluster-peers` of node `index` of three on loopback, upstream's or ours alike.
    static func clusterArguments(_ index: Int, routePorts: [Int]) -> [String] {
        let peers = routePorts.indices.filter { $0 != index }.map { "nats://127.0.0.1:\(routePorts[$0])/" }.joined(separator: ",")
        return ["-cluster-addr", "127.0.0.1:\(routePorts[index])", "-cluster-peers", peers]
    }

    /// Our node's `[nats]` lines with embedded NATS during the upgrade: one cluster secret for our nodes, and
    /// plaintext routes, which upstream's servers need (they have no route TLS; see the guide).
    static func embeddedNATS(clientPort: Int, directory: TemporaryDirectory) -> String {
        "bind_address = \"127.0.0.1:\(clientPort)\"\ncluster_secret_file = \"\(directory.path)/cluster.secret\"\nallow_plaintext_routes = true"
    }

    /// Three upstream nodes with embedded NATS routed to each other (`-cluster-addr`/`-cluster-peers`), started and
    /// waited for until each installed its triggers. One that exits while its cluster forms (upstream panics on a
    /// JetStream timeout at start) is started again, up to twice, as systemd would. The caller stops them.
    static func startUpstreamEmbedded(
        _ binary: String, directory: TemporaryDirectory, databases: [String], clientPorts: [Int], routePorts: [Int],
        compress: Bool, replicas: Int
    ) throws -> [ServerUnderTest] {
        var upstream: [ServerUnderTest] = []
        var arguments: [[String]] = []
        do {
            for index in 0..<3 {
                let config = directory.write(
                    "upstream\(index + 1).toml",
                    UpstreamBinary.config(
                        node: index + 1, database: databases[index], seqMap: "\(directory.path)/node\(index + 1)-seq-map.cbor", natsPort: clientPorts[index],
                        compress: compress, embeddedPort: clientPorts[index], replicas: replicas))
                arguments.append(["-config", config] + clusterArguments(index, routePorts: routePorts))
                upstream.append(try ServerUnderTest(binary, arguments[index], log: "\(directory.path)/upstream\(index + 1).log"))
            }
            for index in 0..<3 {
                var restarts = 0
                let installed = try eventually(timeout: 90, interval: 0.2) {
                    if !upstream[index].isRunning, restarts < 2 {
                        restarts += 1
                        upstream[index] = try ServerUnderTest(binary, arguments[index], log: "\(directory.path)/upstream\(index + 1)-restart\(restarts).log")
                    }
                    return try ProcessTests.UpstreamMixedClusterTests.query(
                        databases[index], "SELECT count(*) FROM sqlite_master WHERE name = '__harmonylite__books_change_log_on_insert'") == "1"
                }
                guard installed else { throw TestFailure("upstream node \(index + 1) did not install its triggers") }
            }
        } catch {
            upstream.forEach { $0.stop() }
            throw error
        }
        return upstream
    }

    /// Our node's TOML during the upgrade: copies for upstream's nodes and upstream's `-c-` stream names.
    static func ourTOML(compress: Bool, nats: String) -> String {
        """
        [snapshot]
        enabled = false
        [replication_log]
        shards = 1
        compress = \(compress)
        upstream_stream_names = true
        publish_for_upstream = true
        [nats]
        \(nats)
        """
    }

    /// SIGTERM to every node at once, then waits for each; the external server last.
    func stop() {
        for node in ours where node.isRunning { kill(node.pid, SIGTERM) }
        ours.forEach { $0.terminate() }
        upstream.forEach { $0.stop() }
        nats?.stop()
    }

    func upstreamLog(_ index: Int) -> String {
        String(decoding: FileManager.default.contents(atPath: upstream[index].log) ?? Data(), as: UTF8.self).suffix(3000).description
    }

    func logs() -> String {
        ours.map { "ours \($0.database):\n" + $0.log.suffix(2500) }.joined(separator: "\n=====\n") + "\n=====\n"
            + upstream.indices.map { "upstream \($0 + 1):\n" + upstreamLog($0) }.joined(separator: "\n=====\n")
    }
}

extension ProcessTests {
    @Suite(.serialized) struct UpstreamMixedClusterTests {
        static func query(_ database: String, _ sql: String) throws -> String {
            try runCommand("/usr/bin/sqlite3", ["-cmd", ".timeout 10000", database, sql]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        static func write(_ database: String, _ sql: String) throws {
            let result = try runCommand("/usr/bin/sqlite3", ["-cmd", ".timeout 10000", database, sql])
            guard result.status == 0 else { throw TestFailure("sqlite3 \(database): \(result.output)") }
        }

        /// The issue's matrix: 1 upstream + 2 ours and 2 upstream + 1 ours, embedded and external NATS,
        /// compression on and off. One write round: an upstream node and one of ours each insert two rows,
        /// then each updates one of the other kind's rows and deletes the other; every node ends with the
        /// same two rows, as the last writer left them.
        @Test(.enabled(if: UpstreamBinary.source != nil, Comment(rawValue: UpstreamBinary.absent)), arguments: MixedClusterCase.all)
        func insertsUpdatesAndDeletesReachEveryNode(_ shape: MixedClusterCase) throws {
            let cluster = try MixedCluster(shape, schema: "CREATE TABLE books(id INTEGER PRIMARY KEY, title TEXT NOT NULL);")
            let upstreamDatabase = cluster.databases[0], ourDatabase = cluster.databases[2]
            func converged(_ expected: String, timeout: Double = 60) throws -> Bool {
                try eventually(timeout: timeout, interval: 0.25) {
                    try cluster.databases.allSatisfy { try Self.query($0, "SELECT id, title FROM books ORDER BY id") == expected }
                }
            }
            func rows() -> String {
                cluster.databases.map { (try? Self.query($0, "SELECT group_concat(id || ':' || title, ' ') FROM books")) ?? "?" }.joined(separator: " | ")
            }
            try Self.write(upstreamDatabase, "INSERT INTO books VALUES (1, 'upstream 1'); INSERT INTO books VALUES (2, 'upstream 2');")
            try Self.write(ourDatabase, "INSERT INTO books VALUES (3, 'ours 3'); INSERT INTO books VALUES (4, 'ours 4');")
            #expect(try converged("1|upstream 1\n2|upstream 2\n3|ours 3\n4|ours 4"), "\(rows())\n\(cluster.logs())")
            try Self.write(upstreamDatabase, "UPDATE books SET title = 'updated by upstream' WHERE id = 3; DELETE FROM books WHERE id = 4;")
            try Self.write(ourDatabase, "UPDATE books SET title = 'updated by ours' WHERE id = 1; DELETE FROM books WHERE id = 2;")
            #expect(try converged("1|updated by ours\n3|updated by upstream"), "\(rows())\n\(cluster.logs())")
            for node in cluster.ours {
                #expect(!node.log.contains("message parked"), "\(node.log.suffix(3000))")
            }
        }

        /// Upstream's changes of a table this node does not have yet are parked (with the stamp their
        /// JetStream time gave them) and applied once the table is created here, in their order: insert,
        /// insert, update, delete. Upstream's other table applies at once.
        @Test(.enabled(if: UpstreamBinary.source != nil, Comment(rawValue: UpstreamBinary.absent)))
        func upstreamChangesOfAMissingTableApplyOnceItExists() throws {
            let directory = try TemporaryDirectory()
            let schema =
                "CREATE TABLE books(id INTEGER PRIMARY KEY, title TEXT NOT NULL); CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); PRAGMA journal_mode=WAL;"
            let (nats, port, upstreamNode, upstreamDatabase) = try ProcessTests.UpstreamUpgrade.startUpstream(
                in: directory, schema: schema, seqMap: directory.path + "/upstream1-seq-map.cbor", compress: true)
            defer { nats.stop() }
            defer { upstreamNode.stop() }
            let database = directory.path + "/node2.db"
            try makeDatabase(database, "CREATE TABLE books(id INTEGER PRIMARY KEY, title TEXT NOT NULL); PRAGMA journal_mode=WAL;")
            let node = try NodeUnderTest(
                nodeID: 2,
                toml: """
                    [snapshot]
                    enabled = false
                    [replication_log]
                    shards = 1
                    compress = true
                    upstream_stream_names = true
                    [nats]
                    urls = ["nats://127.0.0.1:\(port)"]
                    """, directory: directory, database: database)
            defer { node.terminate() }
            try node.waitUntilReady(timeout: 90)
            try Self.write(upstreamDatabase, "INSERT INTO notes VALUES (1, 'first'); INSERT INTO notes VALUES (2, 'second');")
            try Self.write(upstreamDatabase, "UPDATE notes SET body = 'first, edited' WHERE id = 1;")
            try Self.write(upstreamDatabase, "DELETE FROM notes WHERE id = 2; INSERT INTO books VALUES (1, 'shared');")
            let parked = "SELECT kind || ':' || count(*) FROM \"__harmonylite___parked\" GROUP BY kind"
            let waited = try eventually(timeout: 60, interval: 0.25) {
                try Self.query(database, "SELECT title FROM books") == "shared" && Self.query(database, parked) == "schema-missing:4"
            }
            #expect(waited, "\((try? Self.query(database, parked)) ?? "")\n\(node.log.suffix(3000))")
            // The migration reaches this node: the parked changes apply, in order, and leave the dead-letter table.
            try Self.write(database, "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);")
            let applied = try eventually(timeout: 60, interval: 0.25) {
                try Self.query(database, "SELECT id, body FROM notes ORDER BY id") == "1|first, edited" && Self.query(database, parked) == ""
            }
            #expect(
                applied,
                "\((try? Self.query(database, "SELECT id, body FROM notes")) ?? "")\n\((try? Self.query(database, parked)) ?? "")\n\(node.log.suffix(3000))")
            // Stamped by the rule (JetStream time, in ms, above 2023), written by upstream's node 1.
            #expect(
                try Self.query(
                    database,
                    "SELECT \"__harmonylite__node\", \"__harmonylite__hlc\" >> 16 > 1700000000000 FROM \"__harmonylite__notes_change_log\" WHERE id = 1")
                    == "1|1")
        }

        /// A takeover that cannot finish (a change upstream's global log names is not pending in its
        /// table's log) stops the node at the first refusal, with exit status 78, which the systemd unit
        /// does not restart on: no worker restarts, no crash loop, the database untouched and the
        /// application's writes still working.
        @Test func aRefusedTakeoverStopsTheNodeAtOnce() throws {
            let directory = try TemporaryDirectory()
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let database = directory.path + "/node1.db"
            try FileManager.default.copyItem(atPath: root.appendingPathComponent("Tests/Fixtures/upstream/pending-changes.db").path, toPath: database)
            try Self.write(database, "UPDATE \"__harmonylite__books_change_log\" SET state = 1 WHERE val_id = 11;")
            let dump = "SELECT type, name, sql FROM sqlite_master ORDER BY name; SELECT count(*) FROM \"__harmonylite___change_log_global\";"
            let before = try Self.query(database, dump)
            let node = try NodeUnderTest(
                nodeID: 1, toml: "[snapshot]\nenabled = false\n[replication_log]\nshards = 1\n", directory: directory, database: database)
            let status = node.waitForExit(timeout: 90)
            #expect(status == 78, "\(node.log.suffix(4000))")
            #expect(node.log.contains("refused the start"), "\(node.log.suffix(4000))")
            #expect(node.log.contains("is not pending in its change log"))
            #expect(supervisorLines(node.log, SupervisorMessage.restarting).isEmpty, "\(node.log.suffix(4000))")
            #expect(!node.log.contains("harmonylite -config FILE -cleanup"), "a refusal's own advice, not the generic one")
            #expect(try Self.query(database, dump) == before)
            try Self.write(database, "INSERT INTO books (id, title) VALUES (500, 'still works');")
            let unit = try String(contentsOfFile: root.appendingPathComponent("deploy/harmonylite.service").path, encoding: .utf8)
            #expect(unit.contains("\nRestartPreventExitStatus=2 78\n"))
        }
    }
}
