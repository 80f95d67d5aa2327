import ChangeEvents
import Foundation
import NATSClient
import TestSupport
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
            let connection = try NATSConnection.connect(try cluster.clientSettings(1, name: "garbage"))
            try connection.publish(subject: "harmonylite-change-log-1.2", payload: Array("this is not a change batch".utf8))
            try cluster.sql(0, "INSERT INTO kv VALUES (2, 'after the garbage');")
            try cluster.sql(2, "INSERT INTO kv VALUES (3, 'from node 3');")
            #expect(
                try cluster.converge("SELECT group_concat(v, '/') FROM kv WHERE k > 1 ORDER BY k;", to: "after the garbage/from node 3\n"), "\(cluster.logs())")
            for index in 0..<3 {
                let listed = try Self.parked(cluster, index)
                #expect(listed.contains("harmonylite-changes-1\t") && listed.contains("\tundecodable\t"), "node \(index + 1): \(listed)")
                #expect(listed.split(separator: "\n").count == 2, "node \(index + 1): one header and one message: \(listed)")
                #expect(cluster.node(index).log.contains("message parked"), "node \(index + 1)")
            }
        }

        /// A 700 KB table name in one event: parked like any unknown table, and no status or log line
        /// quoting it grows past its bound — before, the applier's status line outgrew the supervisor's 1 MiB
        /// control frame, the connection closed, the applier restarted onto the same event and the node
        /// crash-looped out. The applier keeps its pid; the shard goes on.
        @Test func aHugeTableNameIsParkedAndTheApplierStaysUp() throws {
            let cluster = try TestCluster(schema: Replication.schema)
            try cluster.sql(0, "INSERT INTO kv VALUES (1, 'before');")
            #expect(try cluster.converge("SELECT v FROM kv WHERE k = 1;", to: "before\n"), "\(cluster.logs())")
            let appliers = (0..<3).map { cluster.node($0).children()["applier"] }
            let table = String(repeating: "t", count: 700_000)
            let event = ChangeEvent(
                changeID: 1, table: table, operation: .upsert, stamp: 1 << 40, writer: 99, columns: ["id"], values: [.integer(1)], keyCount: 1)
            let batch = ChangeBatch(origin: 2, schemaHash: "", events: [event]).encoded(compress: false)
            let connection = try NATSConnection.connect(try cluster.clientSettings(1, name: "huge-name"))
            try connection.publish(subject: "harmonylite-change-log-1.2", payload: batch)
            try cluster.sql(0, "INSERT INTO kv VALUES (2, 'after the huge name');")
            #expect(try cluster.converge("SELECT v FROM kv WHERE k = 2;", to: "after the huge name\n"), "\(cluster.logs().prefix(20_000))")
            for index in 0..<3 {
                #expect(eventually(timeout: 20) { ((try? Self.parked(cluster, index)) ?? "").contains("harmonylite-changes-1\t") }, "node \(index + 1)")
                #expect(
                    cluster.node(index).children()["applier"] == appliers[index],
                    "node \(index + 1)'s applier was restarted: \(cluster.node(index).log.split(separator: "\n").filter { $0.contains("applier") }.suffix(12).joined(separator: "\n"))"
                )
                let longest = cluster.node(index).log.split(separator: "\n").map(\.utf8.count).max() ?? 0
                #expect(longest < 64 * 1024, "node \(index + 1) wrote a log line of \(longest) bytes")
            }
        }

        /// Issue 20: one transaction writes a shared table and a table only node 1 has. Before, node 2 parked
        /// the whole message, so the shared row was lost there for good (also after `-retry-parked`, and after
        /// the table was dropped on node 1). Now only the missing table's rows wait parked; they apply once the
        /// table exists on node 2.
        @Test func aTableOnlyOneNodeHasParksOnlyItsOwnRows() throws {
            let cluster = try TestCluster(size: 2, schema: Replication.schema)
            try cluster.sql(
                0,
                "CREATE TABLE scratch (id INTEGER PRIMARY KEY, note TEXT);"
                    + "BEGIN; INSERT INTO kv VALUES (1, 'shared'); INSERT INTO scratch VALUES (7, 'only here'); COMMIT;")
            #expect(try cluster.converge("SELECT v FROM kv WHERE k = 1;", to: "shared\n"), "\(cluster.logs())")
            #expect(eventually(timeout: 20) { ((try? Self.parked(cluster, 1)) ?? "").contains("\tschema-missing\t") }, "\(cluster.logs())")
            #expect(cluster.node(1).log.contains("the message's other rows are applied"))
            try cluster.sql(0, "DROP TABLE scratch;")
            try cluster.sql(1, "CREATE TABLE scratch (id INTEGER PRIMARY KEY, note TEXT);")
            #expect(try cluster.converge("SELECT id, note FROM scratch;", to: "7|only here\n", on: [1]), "\(cluster.logs())")
            #expect(try Self.parked(cluster, 1).hasPrefix("no parked messages"))
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
            #expect(
                try cluster.converge(
                    "SELECT count(*), group_concat(name, '/') FROM (SELECT name FROM later ORDER BY id);",
                    to: "5|row 1/row 2/row 3/row 4/row 5\n", on: [0, 1]), "\(cluster.logs())")
            #expect(try Self.parked(cluster, 1).hasPrefix("no parked messages"))
            #expect(cluster.node(1).children()["applier"] == applierBefore, "the applier was restarted")
            // Node 3 still lacks the table: retried by hand, its rows fail again and stay parked, one attempt more.
            let before = try Self.parked(cluster, 2)
            #expect(before.contains("\tschema-missing\t"))
            let retried = try runCommand(Binaries.supervisor, ["-config", cluster.node(2).configPath, "-retry-parked"])
            #expect(retried.status == 0 && retried.output.contains("asked the applier to retry"), "\(retried.output)")
            let parkedMessages = before.split(separator: "\n").count - 1
            #expect(
                eventually(timeout: 10) { Self.attempts((try? Self.parked(cluster, 2)) ?? "") >= Self.attempts(before) + parkedMessages },
                "\(before) → \((try? Self.parked(cluster, 2)) ?? "")")
        }
    }
}
