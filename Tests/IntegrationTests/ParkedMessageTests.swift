import TestSupport
import Foundation
import NATSClient
import Testing

extension ProcessTests {
    /// Messages a node cannot apply are parked, and replication goes on: a garbage message on a shard
    /// subject, and rows of a table one node does not have yet (until it runs the same migration).
    @Suite(.serialized) struct Parking {
        /// `harmonylite -parked` of node `index`.
        static func parked(_ cluster: TestCluster, _ index: Int) throws -> String {
            let result = try runCommand(Binaries.supervisor, ["-config", cluster.node(index).configPath, "-parked"])
            guard result.status == 0 else { throw TestFailure("-parked on node \(index + 1): \(result.output)") }
            return result.output
        }

        /// The attempts column of a `-parked` listing, added up.
        static func attempts(_ listing: String) -> Int {
            listing.split(separator: "\n").dropFirst().compactMap { $0.split(separator: "\t").last.flatMap { Int($0) } }.reduce(0, +)
        }

        @Test func aGarbageMessageIsParkedOnEveryNodeAndTheShardGoesOn() throws {
            let cluster = try TestCluster(schema: Replication.schema)
            try cluster.sql(0, "INSERT INTO kv VALUES (1, 'before');")
            #expect(try cluster.converge("SELECT v FROM kv WHERE k = 1;", to: "before\n"), "\(cluster.logs())")
            let connection = try NATSConnection.connect(ConnectionSettings(urls: ["nats://127.0.0.1:\(cluster.clientPorts[1])"], name: "garbage"))
            try connection.publish(subject: "harmonylite-change-log-1", payload: Array("this is not a change batch".utf8))
            try cluster.sql(0, "INSERT INTO kv VALUES (2, 'after the garbage');")
            try cluster.sql(2, "INSERT INTO kv VALUES (3, 'from node 3');")
            #expect(try cluster.converge("SELECT group_concat(v, '/') FROM kv WHERE k > 1 ORDER BY k;", to: "after the garbage/from node 3\n"), "\(cluster.logs())")
            for index in 0..<3 {
                let listed = try Self.parked(cluster, index)
                #expect(listed.contains("harmonylite-changes-1\t") && listed.contains("\tundecodable\t"), "node \(index + 1): \(listed)")
                #expect(listed.split(separator: "\n").count == 2, "node \(index + 1): one header and one message: \(listed)")
                #expect(cluster.node(index).log.contains("message parked"), "node \(index + 1)")
            }
        }

        @Test func rowsOfATableMissingHereAreParkedAndApplyOnceTheTableIsCreated() throws {
            let cluster = try TestCluster(schema: Replication.schema, extraTOML: Array(repeating: "[replication_log]\nshards = 2\n", count: 3))
            let migration = "CREATE TABLE later (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
            try cluster.sql(0, migration + (1...5).map { "INSERT INTO later VALUES (\($0), 'row \($0)');" }.joined())
            // Node 2 parks them (it lacks the table) and keeps applying other tables meanwhile.
            #expect(eventually(timeout: 20) { ((try? Self.parked(cluster, 1)) ?? "").contains("\tschema-missing\t") }, "\(cluster.logs())")
            try cluster.sql(0, (1...20).map { "INSERT INTO kv VALUES (\($0), 'kv \($0)');" }.joined())
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "20\n"), "\(cluster.logs())")
            #expect(try cluster.sql(1, "SELECT count(*) FROM sqlite_master WHERE name = 'later';") == "0\n")
            // The same migration on node 2: the parked rows apply there without a restart.
            let applierBefore = cluster.node(1).children()["applier"]
            try cluster.sql(1, migration)
            #expect(try cluster.converge("SELECT count(*), group_concat(name, '/') FROM (SELECT name FROM later ORDER BY id);",
                                         to: "5|row 1/row 2/row 3/row 4/row 5\n", on: [0, 1]), "\(cluster.logs())")
            #expect(try Self.parked(cluster, 1).hasPrefix("no parked messages"))
            #expect(cluster.node(1).children()["applier"] == applierBefore, "the applier was restarted")
            // Node 3 still lacks the table: retried by hand, its rows fail again and stay parked, one attempt more.
            let before = try Self.parked(cluster, 2)
            #expect(before.contains("\tschema-missing\t"))
            let retried = try runCommand(Binaries.supervisor, ["-config", cluster.node(2).configPath, "-retry-parked"])
            #expect(retried.status == 0 && retried.output.contains("asked the applier to retry"), "\(retried.output)")
            let parkedMessages = before.split(separator: "\n").count - 1
            #expect(eventually(timeout: 10) { Self.attempts((try? Self.parked(cluster, 2)) ?? "") >= Self.attempts(before) + parkedMessages },
                    "\(before) → \((try? Self.parked(cluster, 2)) ?? "")")
        }
    }
}
