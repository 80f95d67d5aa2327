import ChangeLog
import Foundation
import TestSupport
import Testing

/// Upstream HarmonyLite's (Go) binary for interoperability tests: `HARMONYLITE_UPSTREAM` (the binary, or
/// its `.zst`), else `../shared/peers/harmonylite-go/harmonylite.zst` next to the package root. Absent:
/// the tests that need it are skipped, saying so.
enum UpstreamBinary {
    static var source: String? {
        if let explicit = ProcessInfo.processInfo.environment["HARMONYLITE_UPSTREAM"], !explicit.isEmpty {
            return FileManager.default.fileExists(atPath: explicit) ? explicit : nil
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let shared = root.deletingLastPathComponent().appendingPathComponent("shared/peers/harmonylite-go/harmonylite.zst").path
        return FileManager.default.fileExists(atPath: shared) ? shared : nil
    }

    static let absent =
        "upstream HarmonyLite's binary was not found: set HARMONYLITE_UPSTREAM to it (or its .zst), or put ../shared/peers/harmonylite-go/harmonylite.zst next to the package"

    /// An executable copy in `directory`.
    static func install(in directory: TemporaryDirectory) throws -> String {
        guard let source else { throw TestFailure(absent) }
        let target = directory.path + "/harmonylite-upstream"
        if source.hasSuffix(".zst") {
            let result = try runCommand("/usr/bin/zstd", ["-q", "-d", "-f", source, "-o", target])
            guard result.status == 0 else { throw TestFailure("zstd: \(result.output)") }
        } else {
            try FileManager.default.copyItem(atPath: source, toPath: target)
        }
        chmod(target, 0o755)
        return target
    }

    /// Upstream's TOML for one node on an external nats-server. `polling_interval = 500`: with 0 upstream
    /// sometimes never publishes an external write (see the binary's README). `embeddedPort`: the node runs
    /// its own server, listening there, instead of using the one at `natsPort`.
    static func config(node: Int, database: String, seqMap: String, natsPort: Int, compress: Bool, embeddedPort: Int? = nil, replicas: Int? = nil) -> String {
        """
        db_path = "\(database)"
        node_id = \(node)
        seq_map_path = "\(seqMap)"
        polling_interval = 500
        [snapshot]
        enabled = false
        [replication_log]
        shards = 1
        max_entries = 1024
        compress = \(compress)
        \(replicas.map { "replicas = \($0)" } ?? "")
        [nats]
        \(embeddedPort.map { "bind_address = \"127.0.0.1:\($0)\"" } ?? "urls = [\"nats://127.0.0.1:\(natsPort)\"]")
        subject_prefix = "harmonylite-change-log"
        stream_prefix = "harmonylite-changes"
        [logging]
        verbose = true
        """
    }
}

extension ProcessTests {
    @Suite(.serialized) struct UpstreamUpgrade {
        static let schema = "CREATE TABLE books(id INTEGER PRIMARY KEY, title TEXT NOT NULL); PRAGMA journal_mode=WAL;"

        static func count(_ database: String, _ query: String) throws -> Int {
            Int(try runCommand("/usr/bin/sqlite3", ["-cmd", ".timeout 10000", database, query]).output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }

        /// A nats-server on a free port and upstream node 1 on `database` (created with `schema`), its
        /// triggers installed.
        static func startUpstream(
            in directory: TemporaryDirectory, schema: String = schema, seqMap: String, compress: Bool
        ) throws
            -> (nats: ServerUnderTest, port: Int, node: ServerUnderTest, database: String)
        {
            let upstream = try UpstreamBinary.install(in: directory)
            let port = try freePort()
            let nats = try ServerUnderTest(
                "/usr/sbin/nats-server", ["-js", "-a", "127.0.0.1", "-p", "\(port)", "-sd", directory.path + "/js"], log: directory.path + "/nats.log")
            guard nats.waitForTCP(port: port) else { throw TestFailure("nats-server did not start") }
            let database = directory.path + "/node1.db"
            try makeDatabase(database, schema)
            let config = directory.write(
                "upstream1.toml", UpstreamBinary.config(node: 1, database: database, seqMap: seqMap, natsPort: port, compress: compress))
            let node = try ServerUnderTest(upstream, ["-config", config], log: directory.path + "/upstream1.log")
            let installed = try eventually(timeout: 60, interval: 0.2) {
                try count(database, "SELECT count(*) FROM sqlite_master WHERE name = '__harmonylite__books_change_log_on_insert'") == 1
            }
            guard installed else {
                throw TestFailure(
                    "upstream did not install its triggers: \(String(decoding: FileManager.default.contents(atPath: node.log) ?? Data(), as: UTF8.self).suffix(3000))"
                )
            }
            return (nats, port, node, database)
        }

        /// The production guide's "Version Upgrades" on a running upstream node: stopped with changes it
        /// captured and never published, then this version started on the same database, seq map and
        /// stream, while the application (the sqlite3 shell) writes in a loop through all of it. No
        /// application write fails, the pending changes and every loop write reach a second node (an
        /// upstream node upgraded too), and that node's writes come back.
        /// With `compress`, upstream's stream is `-c-` and so are its seq map's keys: the node keeps both
        /// with `upstream_stream_names`.
        @Test(.enabled(if: UpstreamBinary.source != nil, Comment(rawValue: UpstreamBinary.absent)), arguments: [false, true])
        func inPlaceUpgradeKeepsPendingChangesAndTheApplicationWriting(compress: Bool) throws {
            let stream = compress ? "harmonylite-changes-c-1" : "harmonylite-changes-1"
            let directory = try TemporaryDirectory()
            let seqMap = directory.path + "/node1-seq-map.cbor"
            let (nats, port, upstreamNode, database) = try Self.startUpstream(in: directory, seqMap: seqMap, compress: compress)
            defer { nats.stop() }
            defer { upstreamNode.stop() }
            // Published by upstream: rows 1-20.
            _ = try runCommand(
                "/usr/bin/sqlite3", ["-cmd", ".timeout 10000", database, (1...20).map { "INSERT INTO books VALUES (\($0), 'upstream \($0)');" }.joined()])
            let published = try eventually(timeout: 60, interval: 0.2) {
                try Self.count(database, "SELECT count(*) FROM __harmonylite___change_log_global") == 0
            }
            #expect(published, "upstream did not publish its changes")
            // The second node: an upstream node that applied everything so far (a copy of this one).
            #expect(eventually(timeout: 30) { (try? SeqMapFile.readUpstream(seqMap))?[stream] == 20 }, "upstream's seq map did not reach 20")
            upstreamNode.stop()
            let database2 = directory.path + "/node2.db"
            _ = try runCommand("/usr/bin/sqlite3", [database, ".backup '\(database2)'"])
            try FileManager.default.copyItem(atPath: seqMap, toPath: directory.path + "/node2-seq-map.cbor")
            // Captured by upstream's triggers while it is down, never published: rows 21-30 and an update of 1.
            _ = try runCommand(
                "/usr/bin/sqlite3",
                [
                    "-cmd", ".timeout 10000", database,
                    (21...30).map { "INSERT INTO books VALUES (\($0), 'pending \($0)');" }.joined() + "UPDATE books SET title = 'pending update' WHERE id = 1;",
                ])
            #expect(try Self.count(database, "SELECT count(*) FROM __harmonylite___change_log_global") == 11)

            // The application keeps writing, one sqlite3 process per transaction, through the upgrade.
            let loopLog = directory.path + "/application.log"
            let application = try ServerUnderTest(
                "/bin/bash",
                [
                    "-c",
                    """
                    for i in $(seq 1000 1299); do
                      sqlite3 -cmd '.timeout 10000' '\(database)' "INSERT INTO books VALUES ($i, 'application $i');" || echo "FAILED $i"
                      sleep 0.02
                    done
                    echo DONE
                    """,
                ], log: loopLog)
            defer { application.stop() }
            let toml = """
                [snapshot]
                enabled = false
                [replication_log]
                shards = 1
                compress = \(compress)
                upstream_stream_names = true
                [nats]
                urls = ["nats://127.0.0.1:\(port)"]
                subject_prefix = "harmonylite-change-log"
                stream_prefix = "harmonylite-changes"
                """
            let node1 = try NodeUnderTest(nodeID: 1, toml: toml, directory: directory, database: database)
            try node1.waitUntilReady(timeout: 90)
            let node2 = try NodeUnderTest(nodeID: 2, toml: toml, directory: directory, database: database2)
            try node2.waitUntilReady(timeout: 90)
            // 11 captured while upstream was down, and the application's writes until the takeover.
            let taken = node1.log.split(separator: "\n").first { $0.contains("took over upstream HarmonyLite's change log: ") }
                .flatMap { Int($0.split(separator: "change log: ")[1].prefix { $0.isNumber }) }
            #expect((taken ?? 0) >= 11, "\(node1.log.suffix(4000))")
            #expect(node1.log.contains("consumption continues from its seq map (\(stream)=20)"))
            #expect(node2.log.contains("took over upstream HarmonyLite's change log: 0 change(s)"), "\(node2.log.suffix(4000))")

            let finished = eventually(timeout: 120, interval: 0.2) {
                (try? String(contentsOfFile: loopLog, encoding: .utf8))?.contains("DONE") == true
            }
            #expect(finished)
            let loopOutput = (try? String(contentsOfFile: loopLog, encoding: .utf8)) ?? ""
            #expect(!loopOutput.contains("FAILED"), "application writes failed: \(loopOutput.suffix(2000))")
            #expect(!loopOutput.contains("Error"), "\(loopOutput.suffix(2000))")
            #expect(try Self.count(database, "SELECT count(*) FROM books") == 330)
            // Every pending change and every application write reaches node 2.
            let arrived = try eventually(timeout: 90, interval: 0.25) { try Self.count(database2, "SELECT count(*) FROM books") == 330 }
            let rows2 = try Self.count(database2, "SELECT count(*) FROM books")
            #expect(arrived, "node 2 has \(rows2) rows\n\(node1.log.suffix(3000))\n=====\n\(node2.log.suffix(3000))")
            #expect(try runCommand("/usr/bin/sqlite3", [database2, "SELECT title FROM books WHERE id = 1"]).output == "pending update\n")
            // And back: node 2's write reaches node 1.
            _ = try runCommand("/usr/bin/sqlite3", ["-cmd", ".timeout 10000", database2, "INSERT INTO books VALUES (5000, 'from node 2');"])
            #expect(try eventually(timeout: 60, interval: 0.25) { try Self.count(database, "SELECT count(*) FROM books WHERE id = 5000") == 1 })
            node2.terminate()
            node1.terminate()
        }

        /// A mixed cluster: an upstream node and one of ours on one nats-server. Upstream's inserts,
        /// updates and deletes (CBOR events, zstd-compressed when `compress`) reach our node, stamped by
        /// their JetStream time; with `publish_for_upstream` ours reach the upstream node. With compression
        /// upstream names its stream `-c-`; ours shares it by `upstream_stream_names`.
        @Test(.enabled(if: UpstreamBinary.source != nil, Comment(rawValue: UpstreamBinary.absent)), arguments: [false, true])
        func changesFlowBothWaysInAMixedCluster(compress: Bool) throws {
            let directory = try TemporaryDirectory()
            let schema = "CREATE TABLE books(id INTEGER PRIMARY KEY, title TEXT NOT NULL, price REAL, cover BLOB, added DATETIME); PRAGMA journal_mode=WAL;"
            let (nats, port, upstreamNode, database1) = try Self.startUpstream(
                in: directory, schema: schema, seqMap: directory.path + "/upstream1-seq-map.cbor", compress: compress)
            defer { nats.stop() }
            defer { upstreamNode.stop() }
            let database2 = directory.path + "/node2.db"
            try makeDatabase(database2, schema)
            let node2 = try NodeUnderTest(
                nodeID: 2,
                toml: """
                    [snapshot]
                    enabled = false
                    [replication_log]
                    shards = 1
                    compress = \(compress)
                    \(compress ? "upstream_stream_names = true" : "")
                    publish_for_upstream = true
                    [nats]
                    urls = ["nats://127.0.0.1:\(port)"]
                    subject_prefix = "harmonylite-change-log"
                    stream_prefix = "harmonylite-changes"
                    """, directory: directory, database: database2)
            try node2.waitUntilReady(timeout: 90)
            func upstreamSQL(_ sql: String) throws { _ = try runCommand("/usr/bin/sqlite3", ["-cmd", ".timeout 10000", database1, sql]) }
            func rows() -> String {
                (try? runCommand("/usr/bin/sqlite3", [database2, "SELECT id, title, price, hex(cover), added FROM books ORDER BY id"]).output) ?? ""
            }
            let upstreamLog = { String(decoding: FileManager.default.contents(atPath: upstreamNode.log) ?? Data(), as: UTF8.self).suffix(3000) }
            try upstreamSQL(
                "INSERT INTO books VALUES (1, 'Dune', 9.5, x'0102', '2024-05-06 07:08:09'); INSERT INTO books VALUES (2, 'Emma', NULL, NULL, NULL); INSERT INTO books VALUES (3, 'Ulysses', -1, x'', NULL);"
            )
            #expect(
                eventually(timeout: 60, interval: 0.25) { rows() == "1|Dune|9.5|0102|2024-05-06 07:08:09+00:00\n2|Emma|||\n3|Ulysses|-1.0||\n" },
                "\(rows())\n\(node2.log.suffix(3000))\n=====\n\(upstreamLog())")
            try upstreamSQL("UPDATE books SET title = 'Dune Messiah', price = 10 WHERE id = 1; DELETE FROM books WHERE id = 2;")
            #expect(
                eventually(timeout: 60, interval: 0.25) { rows() == "1|Dune Messiah|10.0|0102|2024-05-06 07:08:09+00:00\n3|Ulysses|-1.0||\n" },
                "\(rows())\n\(node2.log.suffix(3000))")
            // Upstream's rows carry its message's JetStream time as their stamp, its node as their writer.
            let clock = try runCommand(
                "/usr/bin/sqlite3",
                [
                    database2,
                    "SELECT \"__harmonylite__node\", \"__harmonylite__hlc\" >> 16 > 1700000000000 FROM \"__harmonylite__books_change_log\" WHERE id = 1",
                ]
            ).output
            #expect(clock == "1|1\n")
            #expect(!node2.log.contains("parked"), "\(node2.log.suffix(3000))")
            // And ours reach upstream.
            func upstreamRows() -> String {
                (try? runCommand("/usr/bin/sqlite3", [database1, "SELECT id, title, price, hex(cover) FROM books WHERE id >= 100 ORDER BY id"]).output) ?? ""
            }
            _ = try runCommand(
                "/usr/bin/sqlite3",
                [
                    "-cmd", ".timeout 10000", database2,
                    "INSERT INTO books (id, title, price, cover) VALUES (100, 'Ours', 1.25, x'ff00'); INSERT INTO books (id, title) VALUES (101, 'Gone soon'); INSERT INTO books (id, title) VALUES (-102, 'négatif');",
                ])
            #expect(
                eventually(timeout: 60, interval: 0.25) { upstreamRows() == "100|Ours|1.25|FF00\n101|Gone soon||\n" },
                "\(upstreamRows())\n\(node2.log.suffix(3000))\n=====\n\(upstreamLog())")
            _ = try runCommand(
                "/usr/bin/sqlite3",
                ["-cmd", ".timeout 10000", database2, "UPDATE books SET title = 'Ours, updated' WHERE id = 100; DELETE FROM books WHERE id = 101;"])
            #expect(eventually(timeout: 60, interval: 0.25) { upstreamRows() == "100|Ours, updated|1.25|FF00\n" }, "\(upstreamRows())\n\(upstreamLog())")
            #expect(try runCommand("/usr/bin/sqlite3", [database1, "SELECT title FROM books WHERE id = -102"]).output == "négatif\n")
            // Our node did not apply its own copies again: the row clock of 100 is still its own HLC write.
            #expect(
                try runCommand("/usr/bin/sqlite3", [database2, "SELECT \"__harmonylite__node\" FROM \"__harmonylite__books_change_log\" WHERE id = 100"]).output
                    == "2\n")
            node2.terminate()
        }

        /// Without `upstream_stream_names`, a node whose shard subject upstream's compressed stream binds
        /// stops at once and says which setting shares it (before: it waited forever on "subjects overlap").
        @Test(.enabled(if: UpstreamBinary.source != nil, Comment(rawValue: UpstreamBinary.absent)))
        func upstreamCompressedStreamNamesTheSettingToSet() throws {
            let directory = try TemporaryDirectory()
            let (nats, port, upstreamNode, _) = try Self.startUpstream(in: directory, seqMap: directory.path + "/upstream1-seq-map.cbor", compress: true)
            defer { nats.stop() }
            defer { upstreamNode.stop() }
            let database2 = directory.path + "/node2.db"
            try makeDatabase(database2, Self.schema)
            let node2 = try NodeUnderTest(
                nodeID: 2,
                toml: """
                    [replication_log]
                    shards = 1
                    compress = true
                    [nats]
                    urls = ["nats://127.0.0.1:\(port)"]
                    """, directory: directory, database: database2)
            #expect(node2.waitForExit(timeout: 120) != nil, "\(node2.log.suffix(3000))")
            #expect(node2.log.contains("set replication_log.upstream_stream_names = true"), "\(node2.log.suffix(3000))")
        }

        /// The rolling upgrade of a 3-node upstream cluster to ours, one node at a time, while the
        /// application inserts on all three in turn (one sqlite3 process per insert). Each upgraded node takes
        /// over its database in place (with what upstream captured while it was down) and publishes for the
        /// upstream nodes left; at the end every node has every row, and no application write failed.
        @Test(.enabled(if: UpstreamBinary.source != nil, Comment(rawValue: UpstreamBinary.absent)), arguments: [false, true])
        func rollingUpgradeOfAThreeNodeUpstreamClusterUnderLoad(compress: Bool) throws {
            let directory = try TemporaryDirectory()
            let upstream = try UpstreamBinary.install(in: directory)
            let port = try freePort()
            let nats = try ServerUnderTest(
                "/usr/sbin/nats-server", ["-js", "-a", "127.0.0.1", "-p", "\(port)", "-sd", directory.path + "/js"], log: directory.path + "/nats.log")
            defer { nats.stop() }
            #expect(nats.waitForTCP(port: port))
            let databases = (1...3).map { directory.path + "/node\($0).db" }
            var upstreamNodes: [ServerUnderTest] = []
            for (index, database) in databases.enumerated() {
                try makeDatabase(database, Self.schema)
                let config = directory.write(
                    "upstream\(index + 1).toml",
                    UpstreamBinary.config(
                        node: index + 1, database: database, seqMap: directory.path + "/node\(index + 1)-seq-map.cbor", natsPort: port, compress: compress))
                upstreamNodes.append(try ServerUnderTest(upstream, ["-config", config], log: directory.path + "/upstream\(index + 1).log"))
            }
            defer { upstreamNodes.forEach { $0.stop() } }
            for database in databases {
                #expect(
                    try eventually(timeout: 60, interval: 0.2) {
                        try Self.count(database, "SELECT count(*) FROM sqlite_master WHERE name = '__harmonylite__books_change_log_on_insert'") == 1
                    })
            }
            let total = 450
            let loopLog = directory.path + "/application.log"
            let application = try ServerUnderTest(
                "/bin/bash",
                [
                    "-c",
                    """
                    databases=('\(databases[0])' '\(databases[1])' '\(databases[2])')
                    for i in $(seq 1 \(total)); do
                      sqlite3 -cmd '.timeout 10000' "${databases[$((i % 3))]}" "INSERT INTO books VALUES ($i, 'row $i');" || echo "FAILED $i"
                      sleep 0.03
                    done
                    echo DONE
                    """,
                ], log: loopLog)
            defer { application.stop() }
            var nodes: [NodeUnderTest] = []
            for index in 0..<3 {
                Thread.sleep(forTimeInterval: 3)
                upstreamNodes[index].stop()
                let node = try NodeUnderTest(
                    nodeID: index + 1, toml: MixedCluster.ourTOML(compress: compress, nats: "urls = [\"nats://127.0.0.1:\(port)\"]"),
                    directory: directory, database: databases[index])
                try node.waitUntilReady(timeout: 90)
                #expect(node.log.contains("took over upstream HarmonyLite's change log"), "\(node.log.suffix(3000))")
                nodes.append(node)
            }
            #expect(eventually(timeout: 180, interval: 0.25) { (try? String(contentsOfFile: loopLog, encoding: .utf8))?.contains("DONE") == true })
            let loopOutput = (try? String(contentsOfFile: loopLog, encoding: .utf8)) ?? ""
            #expect(!loopOutput.contains("FAILED") && !loopOutput.contains("Error"), "application writes failed: \(loopOutput.suffix(2000))")
            for (index, database) in databases.enumerated() {
                let converged = try eventually(timeout: 120, interval: 0.5) { try Self.count(database, "SELECT count(*) FROM books") == total }
                let rows = try Self.count(database, "SELECT count(*) FROM books")
                #expect(converged, "node \(index + 1) has \(rows) of \(total) rows\n\(nodes[index].log.suffix(3000))")
            }
            nodes.forEach { $0.terminate() }
        }
    }
}
