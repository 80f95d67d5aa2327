import TestSupport
import ChangeLog
import Foundation
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

    static let absent = "upstream HarmonyLite's binary was not found: set HARMONYLITE_UPSTREAM to it (or its .zst), or put ../shared/peers/harmonylite-go/harmonylite.zst next to the package"

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
    /// sometimes never publishes an external write (see the binary's README).
    static func config(node: Int, database: String, seqMap: String, natsPort: Int, compress: Bool) -> String {
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
        [nats]
        urls = ["nats://127.0.0.1:\(natsPort)"]
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

        /// The production guide's "Version Upgrades" on a running upstream node: stopped with changes it
        /// captured and never published, then this version started on the same database, seq map and
        /// stream, while the application (the sqlite3 shell) writes in a loop through all of it. No
        /// application write fails, the pending changes and every loop write reach a second node (an
        /// upstream node upgraded too), and that node's writes come back.
        @Test(.enabled(if: UpstreamBinary.source != nil, Comment(rawValue: UpstreamBinary.absent)))
        func inPlaceUpgradeKeepsPendingChangesAndTheApplicationWriting() throws {
            let directory = try TemporaryDirectory()
            let upstream = try UpstreamBinary.install(in: directory)
            let port = try freePort()
            let nats = try ServerUnderTest("/usr/sbin/nats-server", ["-js", "-a", "127.0.0.1", "-p", "\(port)", "-sd", directory.path + "/js"], log: directory.path + "/nats.log")
            defer { nats.stop() }
            #expect(nats.waitForTCP(port: port))
            let database = directory.path + "/node1.db"
            let seqMap = directory.path + "/node1-seq-map.cbor"
            try makeDatabase(database, Self.schema)
            let upstreamConfig = directory.write("upstream1.toml", UpstreamBinary.config(node: 1, database: database, seqMap: seqMap, natsPort: port, compress: false))
            let upstreamNode = try ServerUnderTest(upstream, ["-config", upstreamConfig], log: directory.path + "/upstream1.log")
            defer { upstreamNode.stop() }
            let installed = try eventually(timeout: 60, interval: 0.2) {
                try Self.count(database, "SELECT count(*) FROM sqlite_master WHERE name = '__harmonylite__books_change_log_on_insert'") == 1
            }
            #expect(installed, "upstream did not install its triggers: \(String(decoding: FileManager.default.contents(atPath: upstreamNode.log) ?? Data(), as: UTF8.self).suffix(3000))")
            // Published by upstream: rows 1-20.
            _ = try runCommand("/usr/bin/sqlite3", ["-cmd", ".timeout 10000", database, (1...20).map { "INSERT INTO books VALUES (\($0), 'upstream \($0)');" }.joined()])
            let published = try eventually(timeout: 60, interval: 0.2) { try Self.count(database, "SELECT count(*) FROM __harmonylite___change_log_global") == 0 }
            #expect(published, "upstream did not publish its changes")
            // The second node: an upstream node that applied everything so far (a copy of this one).
            #expect(eventually(timeout: 30) { (try? SeqMapFile.readUpstream(seqMap))?["harmonylite-changes-1"] == 20 }, "upstream's seq map did not reach 20")
            upstreamNode.stop()
            let database2 = directory.path + "/node2.db"
            _ = try runCommand("/usr/bin/sqlite3", [database, ".backup '\(database2)'"])
            try FileManager.default.copyItem(atPath: seqMap, toPath: directory.path + "/node2-seq-map.cbor")
            // Captured by upstream's triggers while it is down, never published: rows 21-30 and an update of 1.
            _ = try runCommand("/usr/bin/sqlite3", ["-cmd", ".timeout 10000", database,
                                                    (21...30).map { "INSERT INTO books VALUES (\($0), 'pending \($0)');" }.joined() + "UPDATE books SET title = 'pending update' WHERE id = 1;"])
            #expect(try Self.count(database, "SELECT count(*) FROM __harmonylite___change_log_global") == 11)

            // The application keeps writing, one sqlite3 process per transaction, through the upgrade.
            let loopLog = directory.path + "/application.log"
            let application = try ServerUnderTest("/bin/bash", ["-c", """
                for i in $(seq 1000 1299); do
                  sqlite3 -cmd '.timeout 10000' '\(database)' "INSERT INTO books VALUES ($i, 'application $i');" || echo "FAILED $i"
                  sleep 0.02
                done
                echo DONE
                """], log: loopLog)
            defer { application.stop() }
            let toml = """
                [snapshot]
                enabled = false
                [replication_log]
                shards = 1
                compress = false
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
            #expect(node1.log.contains("consumption continues from its seq map (harmonylite-changes-1=20)"))
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
    }
}
