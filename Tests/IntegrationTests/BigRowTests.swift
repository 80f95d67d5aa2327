import Foundation
import TestSupport
import Testing

extension ProcessTests {
    /// Rows near and above the message size limit (just under `DataMessage.maximumPublishBytes`, NATS's
    /// default 1 MiB `max_payload`), on one shard, written by sqlite3.
    @Suite(.serialized) struct BigRows {
        static let schema = "CREATE TABLE kv (k INTEGER PRIMARY KEY, v);"
        static let unpublished =
            "SELECT count(*) FROM __harmonylite___change_log_global WHERE id > (SELECT value FROM __harmonylite___meta WHERE key = 'published_through');"
        static let digest = "SELECT group_concat(k || ':' || length(v) || ':' || hex(sha3(v)), ' ') FROM (SELECT * FROM kv ORDER BY k);"

        /// A ~2 MB row cannot travel: it is refused with an error naming its table and key, and the rows
        /// before and after it (alone and in its own transaction) reach the other node; so does a 900 KB row.
        @Test func anOversizedRowIsRefusedAndTheRowsAfterItFlow() throws {
            let cluster = try TestCluster(size: 2, schema: Self.schema)
            try cluster.sql(0, "INSERT INTO kv VALUES (1, 'before');")
            try cluster.sql(0, "INSERT INTO kv VALUES (2, randomblob(2000000));")
            try cluster.sql(0, "INSERT INTO kv VALUES (3, 'after');")
            try cluster.sql(
                0,
                "BEGIN; INSERT INTO kv VALUES (4, 'same transaction'); INSERT INTO kv VALUES (5, zeroblob(3000000)); INSERT INTO kv VALUES (6, randomblob(900000)); COMMIT;"
            )
            #expect(
                try cluster.converge("SELECT group_concat(k) FROM (SELECT k FROM kv ORDER BY k);", to: "1,3,4,6\n", on: [1], timeout: 30),
                "\(cluster.problems())")
            let expected = try cluster.sql(
                0, "SELECT group_concat(k || ':' || length(v) || ':' || hex(sha3(v)), ' ') FROM (SELECT * FROM kv WHERE k NOT IN (2, 5) ORDER BY k);")
            #expect(try cluster.sql(1, Self.digest) == expected)
            #expect(try cluster.converge(Self.unpublished, to: "0\n", on: [0], timeout: 10), "node 1's watermark did not move over the refused rows")
            let refusals = cluster.node(0).log.split(separator: "\n").filter { $0.contains("row too large to replicate") }
            #expect(refusals.count == 2, "\(cluster.problems())")
            #expect(refusals.contains { $0.contains("kv") && $0.contains("k=2") })
            #expect(refusals.contains { $0.contains("kv") && $0.contains("k=5") })
            #expect(cluster.node(0).log.contains("max_payload=1048576") && !cluster.node(0).log.contains("max_payload is below"))
            // Later rows keep flowing.
            try cluster.sql(0, "INSERT INTO kv VALUES (7, 'later');")
            #expect(try cluster.converge("SELECT v FROM kv WHERE k = 7;", to: "later\n", on: [1]))
        }

        /// A burst of rows just under the limit, waiting in the stream while the receiving node is down,
        /// reaches it whole: 32 of them (one fetch by count) would be ~29 MB, far above the 16 MiB IPC frame,
        /// so the broker's fetches are bounded by bytes too.
        @Test func aBurstOfNearLimitRowsArrivesWhole() throws {
            let cluster = try TestCluster(size: 2, schema: Self.schema)
            cluster.stop(1)
            for transaction in 0..<4 {
                try cluster.sql(0, "BEGIN;" + (0..<12).map { "INSERT INTO kv VALUES (\(transaction * 12 + $0), randomblob(900000));" }.joined() + "COMMIT;")
            }
            #expect(try cluster.converge(Self.unpublished, to: "0\n", on: [0], timeout: 60), "\(cluster.problems())")
            try cluster.start(1)
            try cluster.node(1).waitUntilReady(timeout: 60)
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "48\n", on: [1], timeout: 60), "\(cluster.problems())")
            #expect(try cluster.sql(1, Self.digest) == cluster.sql(0, Self.digest))
            #expect(!cluster.node(1).log.contains("too large"), "\(cluster.problems())")
        }

        /// A server that accepts less than the capturer's largest messages is named at connection: the log
        /// says which limit is too low and what is needed (a default server says nothing).
        @Test func aServerWithALowerMaxPayloadIsReported() throws {
            let directory = try TemporaryDirectory()
            let include = directory.write("small.conf", "max_payload: 524288\n")
            let port = try freePort()
            let node = try NodeUnderTest(toml: "[nats]\nbind_address = \"127.0.0.1:\(port)\"\nserver_config = \"\(include)\"\n", directory: directory)
            try node.waitUntilReady()
            #expect(eventually(timeout: 10) { node.log.contains("max_payload is below the capturer's largest messages") }, "\(node.log.suffix(3000))")
            #expect(node.log.contains("max_payload=524288"))
            #expect(node.terminate() == 0)
        }
    }
}
