import ChangeEvents
import Foundation
import HarmonyConfig
import NATSClient
import TestSupport
import Testing

extension ProcessTests {
    /// A node cannot publish changes on another node's behalf: each publishes on
    /// `<subject_prefix>-<shard>.<node_id>`, its embedded server lets its user publish on no other change
    /// subject, and every applier refuses a batch whose subject names another node than its origin.
    @Suite(.serialized) struct OriginSubjects {
        static let operatorTOML = "user_name = \"operator\"\nuser_password = \"operator-pw\"\n"

        static func forged(origin: UInt64, key: Int, value: String) -> [UInt8] {
            let event = ChangeEvent(
                changeID: 1, table: "kv", operation: .upsert, stamp: 1 << 40, writer: origin, columns: ["k", "v"],
                values: [.integer(Int64(key)), .text(value)], keyCount: 1)
            return ChangeBatch(origin: origin, schemaHash: "", events: [event]).encoded(compress: false)
        }

        @Test func aNodesUserMayPublishChangesOnlyOnItsOwnSubjects() throws {
            let port = try freePort()
            let node = try NodeUnderTest(toml: "[replication_log]\nshards = 2\n[nats]\nbind_address = \"127.0.0.1:\(port)\"\n")
            defer { _ = node.terminate() }
            try node.waitUntilReady()
            let connection = try NATSConnection.connect(try embeddedClientSettings(directory: node.directory.path, nodeID: 1, port: port, name: "node-1"))
            for (subject, stream) in [("harmonylite-change-log-1.1", "harmonylite-changes-1"), ("harmonylite-change-log-2.1", "harmonylite-changes-2")] {
                let before = try connection.streamState(stream).lastSequence
                #expect(throws: Never.self) { try connection.publish(subject: subject, payload: [1, 0]) }
                #expect(try connection.streamState(stream).lastSequence == before + 1, "\(subject)")
            }
            for subject in ["harmonylite-change-log-1.2", "harmonylite-change-log-1", "harmonylite-change-log-2.3", "harmonylite-change-log-1.01"] {
                let before = try connection.streamState("harmonylite-changes-1").lastSequence
                #expect(throws: NATSError.self, "\(subject)") { try connection.publish(subject: subject, payload: [1, 0]) }
                #expect(
                    connection.lastError?.contains("Permissions Violation for Publish to \"\(subject)\"") == true, "\(String(describing: connection.lastError))"
                )
                #expect(try connection.streamState("harmonylite-changes-1").lastSequence == before, "\(subject) was stored")
            }
        }

        /// Node 1 (its password leaked, say) publishes a batch claiming origin 2 on its own subject: every node
        /// refuses and parks it, says so naming the subject and origin, and never applies it, not even when
        /// the parked messages are retried; node 1's honest writes still replicate.
        @Test func aForgedOriginIsRefusedOnEveryNode() throws {
            let cluster = try TestCluster(schema: "CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT);")
            let asNode1 = try NATSConnection.connect(try cluster.clientSettings(0, name: "forger"))
            try asNode1.publish(subject: "harmonylite-change-log-1.1", payload: Self.forged(origin: 2, key: 100, value: "forged"))
            try cluster.sql(0, "INSERT INTO kv VALUES (101, 'honest');")
            #expect(try cluster.converge("SELECT group_concat(k || '=' || v, ' ') FROM kv;", to: "101=honest\n"), "\(cluster.problems())")
            for index in 0..<3 {
                #expect(eventually(timeout: 20) { ((try? Parking.parked(cluster, index)) ?? "").contains("\tforged-origin\t") }, "node \(index + 1)")
                let log = cluster.node(index).log
                #expect(
                    log.contains("message refused and parked, never applied") && log.contains("harmonylite-change-log-1.1")
                        && log.contains("comes from node 2 but node 1 published it"), "node \(index + 1): \(log.suffix(3000))")
            }
            // A schema change retries the parked messages: the forged one stays parked, unapplied.
            try cluster.sql(1, "CREATE TABLE later (id INTEGER PRIMARY KEY);")
            #expect(eventually(timeout: 20) { cluster.node(1).log.contains("parked messages retried") }, "\(cluster.node(1).log.suffix(3000))")
            for index in 0..<3 {
                #expect(try cluster.sql(index, "SELECT count(*) FROM kv WHERE k = 100;") == "0\n", "node \(index + 1) applied the forged row")
            }
            #expect(try Parking.parked(cluster, 1).contains("\tforged-origin\t"))
        }

        /// A shard stream made by an older version (or HarmonyLite) binds only `<prefix>-<n>`: the broker
        /// adds the per-node subjects at its start (update_existing is false), says so once, and replicates
        /// through it; a message on the shared subject (a HarmonyLite publisher) is still applied. The same
        /// when the stream is created again by hand under the running node.
        @Test func aStreamWithOnlyTheSharedSubjectIsUpgraded() throws {
            let port = try freePort()
            let toml = "[snapshot]\nenabled = false\n[nats]\nbind_address = \"127.0.0.1:\(port)\"\n" + Self.operatorTOML
            let directory = try TemporaryDirectory()
            let database = directory.path + "/node1.db"
            try makeDatabase(database, "PRAGMA journal_mode=WAL; CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT);")
            var node = try NodeUnderTest(toml: toml, directory: directory, database: database)
            try node.waitUntilReady()
            var settings = ConnectionSettings(urls: ["nats://127.0.0.1:\(port)"], name: "operator")
            settings.userName = "operator"
            settings.userPassword = "operator-pw"
            var asOperator: NATSConnection? = try NATSConnection.connect(settings)
            try asOperator!.deleteStream("harmonylite-changes-1")
            // As HarmonyLite makes it: one subject, message deletes denied (which no update may cancel).
            var harmonyLite = StreamSpecification(name: "harmonylite-changes-1", subject: "harmonylite-change-log-1", replicas: 1, maxMessages: 1024)
            harmonyLite.denyDelete = true
            try asOperator!.ensureStream(harmonyLite, updateExisting: false)
            try asOperator!.publish(subject: "harmonylite-change-log-1", payload: Self.forged(origin: 7, key: 1, value: "from a HarmonyLite node"))
            asOperator = nil
            _ = node.terminate()

            node = try NodeUnderTest(toml: toml, directory: directory, database: database)
            defer { _ = node.terminate() }
            try node.waitUntilReady()
            #expect(node.log.components(separatedBy: "added the per-node subjects to an existing shard stream").count == 2, "\(node.log.suffix(3000))")
            let connection = try NATSConnection.connect(settings)
            let sequence = try connection.streamState("harmonylite-changes-1").lastSequence
            #expect(try runCommand("/usr/bin/sqlite3", ["-cmd", ".timeout 5000", database, "INSERT INTO kv VALUES (2, 'after the upgrade');"]).status == 0)
            #expect(
                eventually(timeout: 20) { ((try? connection.streamState("harmonylite-changes-1").lastSequence) ?? 0) > sequence }, "\(node.log.suffix(3000))")
            #expect(
                eventually(timeout: 20) {
                    (try? runCommand("/usr/bin/sqlite3", [database, "SELECT v FROM kv WHERE k = 1;"]).output) == "from a HarmonyLite node\n"
                }, "the shared subject's message is applied unchecked: \(node.log.suffix(3000))")

            // Created again by hand under the running node, with the shared subject only: the broker sees the
            // new stream and adds its subjects, so the node's next write gets through.
            try connection.deleteStream("harmonylite-changes-1")
            try connection.ensureStream(
                StreamSpecification(name: "harmonylite-changes-1", subject: "harmonylite-change-log-1", replicas: 1, maxMessages: 1024), updateExisting: false)
            #expect(try runCommand("/usr/bin/sqlite3", ["-cmd", ".timeout 5000", database, "INSERT INTO kv VALUES (3, 'after the replacement');"]).status == 0)
            #expect(eventually(timeout: 30) { ((try? connection.streamState("harmonylite-changes-1").lastSequence) ?? 0) >= 1 }, "\(node.log.suffix(3000))")
            #expect(node.log.components(separatedBy: "added the per-node subjects to an existing shard stream").count == 3, "\(node.log.suffix(3000))")
        }
    }
}
