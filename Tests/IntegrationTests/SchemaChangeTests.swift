import Foundation
import TestSupport
import Testing

extension ProcessTests {
    /// Migrations as application teams run them on a live 3-node cluster: one node at a time, stopped for it or
    /// not, while the others go on writing under the old schema (docs/schema-changes.md).
    @Suite(.serialized) struct SchemaChanges {
        static let schema = """
            CREATE TABLE profiles (id INTEGER PRIMARY KEY, name TEXT, secret TEXT);
            CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT);
            CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT);
            """

        /// Stops node `index`, runs `migration` on its database with the sqlite3 shell, starts it again.
        static func migrateStopped(_ cluster: TestCluster, _ index: Int, _ migration: String) throws {
            cluster.stop(index)
            try cluster.sql(index, migration)
            try cluster.start(index)
            try cluster.node(index).waitUntilReady(timeout: 90)
        }

        static func retryParked(_ cluster: TestCluster, _ index: Int) throws {
            let result = try runCommand(Binaries.supervisor, ["-config", cluster.node(index).configPath, "-retry-parked"])
            guard result.status == 0 else { throw TestFailure("-retry-parked on node \(index + 1): \(result.output)") }
        }

        /// `DROP COLUMN secret; ADD COLUMN color` on a node stopped for it reads, by positions, like a rename of
        /// `secret` to `color`: SQLite's CREATE text is even the same as after the rename. Two histories are
        /// possible, so the history says neither: a not-yet-migrated node's `secret` value is parked on the
        /// migrated node (listed by `-parked`), never written into `color`.
        @Test func dropThenAddOnAStoppedNodeIsNoRename() throws {
            let cluster = try TestCluster(schema: Self.schema)
            try cluster.sql(1, "INSERT INTO profiles VALUES (1, 'ann', 's1');")
            #expect(try cluster.converge("SELECT name FROM profiles WHERE id = 1;", to: "ann\n"), "\(cluster.logs())")
            try Self.migrateStopped(cluster, 0, "ALTER TABLE profiles DROP COLUMN secret; ALTER TABLE profiles ADD COLUMN color TEXT;")
            try cluster.sql(1, "INSERT INTO profiles VALUES (7, 'eve', 'hunter2');")
            try cluster.sql(1, "INSERT INTO kv VALUES ('after', 'eve');")
            #expect(try cluster.converge("SELECT v FROM kv WHERE k = 'after';", to: "eve\n"), "\(cluster.logs())")
            // Only secret's value waits aside: eve's row itself is applied on node 1 (its other columns).
            #expect(
                try cluster.converge("SELECT name || ':' || ifnull(color, 'NULL') FROM profiles WHERE id = 7;", to: "eve:NULL\n", on: [0]), "\(cluster.logs())")
            let misplaced = try cluster.sql(0, "SELECT count(*) FROM profiles WHERE color = 'hunter2';")
            let history = try cluster.sql(
                0,
                "SELECT name || ':' || state || ':' || ifnull(renamed_to, '') FROM __harmonylite___columns WHERE table_name = 'profiles' AND name = 'secret';")
            #expect(misplaced == "0\n", "node 1 wrote secret's value into color; history \(history)")
            #expect(!history.contains("renamed"), "history: \(history)")
            #expect(try Parking.parked(cluster, 0).contains("secret"), "the value waits parked, visible: \((try? Parking.parked(cluster, 0)) ?? "")")
            // The others migrate; node 1 still never writes hunter2 into color, also after a retry.
            try cluster.sql(1, "ALTER TABLE profiles DROP COLUMN secret; ALTER TABLE profiles ADD COLUMN color TEXT;")
            try Self.migrateStopped(cluster, 2, "ALTER TABLE profiles DROP COLUMN secret; ALTER TABLE profiles ADD COLUMN color TEXT;")
            try Self.retryParked(cluster, 0)
            try cluster.sql(1, "INSERT INTO profiles VALUES (8, 'fay', 'blue');")
            #expect(try cluster.converge("SELECT color FROM profiles WHERE id = 8;", to: "blue\n", timeout: 60), "\(cluster.logs())")
            #expect(try cluster.sql(0, "SELECT count(*) FROM profiles WHERE color = 'hunter2';") == "0\n")
            // Every node ends with the same rows: eve without a color (as the others have her after their migration).
            #expect(
                try cluster.converge(
                    "SELECT group_concat(id || ':' || name || ':' || ifnull(color, 'NULL'), ',') FROM (SELECT * FROM profiles ORDER BY id);",
                    to: "1:ann:NULL,7:eve:NULL,8:fay:blue\n", timeout: 60), "\(cluster.logs())")
            #expect(try Parking.parked(cluster, 0).contains("hunter2") || Parking.parked(cluster, 0).contains("secret"), "still visible after the retry")
        }

        /// `RENAME COLUMN k TO key` of the primary key, one node after the other (the first live, the last
        /// stopped for it): rows written under either name meanwhile reach every node.
        @Test func aRollingKeyColumnRenameCarriesTheRowsWrittenMeanwhile() throws {
            let cluster = try TestCluster(schema: Self.schema)
            try cluster.sql(0, "INSERT INTO kv VALUES ('before', '0');")
            #expect(try cluster.converge("SELECT v FROM kv WHERE k = 'before';", to: "0\n"), "\(cluster.logs())")
            try cluster.sql(0, "ALTER TABLE kv RENAME COLUMN k TO key;")
            // Node 1 has the new name; node 2 writes under the old one, node 1 under the new one.
            #expect(
                eventually(timeout: 30) {
                    (try? cluster.sql(0, "SELECT state || ':' || ifnull(renamed_to, '') FROM __harmonylite___columns WHERE table_name = 'kv' AND name = 'k';"))
                        == "renamed:key\n"
                },
                "\((try? cluster.sql(0, "SELECT * FROM __harmonylite___columns;")) ?? "")\n\(cluster.logs())")
            try cluster.sql(1, "INSERT INTO kv VALUES ('a', 'from node 2, old name');")
            try cluster.sql(0, "INSERT INTO kv VALUES ('b', 'from node 1, new name');")
            try cluster.sql(1, "ALTER TABLE kv RENAME COLUMN k TO key;")
            try Self.migrateStopped(cluster, 2, "ALTER TABLE kv RENAME COLUMN k TO key;")
            try cluster.sql(2, "INSERT INTO kv VALUES ('c', 'from node 3, after');")
            for index in 0..<3 { try Self.retryParked(cluster, index) }
            let expected = "a|from node 2, old name\nb|from node 1, new name\nbefore|0\nc|from node 3, after\n"
            #expect(
                try cluster.converge("SELECT key, v FROM kv ORDER BY key;", to: expected, timeout: 60),
                "\((0..<3).map { (try? cluster.sql($0, "SELECT key, v FROM kv ORDER BY key;")) ?? "?" })\n\((0..<3).map { (try? Parking.parked(cluster, $0)) ?? "?" })\n\(cluster.problems())"
            )
            for index in 0..<3 { #expect(try Parking.parked(cluster, index).hasPrefix("no parked messages"), "node \(index + 1)") }
        }

        /// `ALTER TABLE customer RENAME TO customers`, one node after the other (the first and the last stopped
        /// for it, the second live): rows written under either name meanwhile reach every node, without
        /// `-retry-parked`.
        @Test func aRollingTableRenameCarriesTheRowsWrittenMeanwhile() throws {
            let cluster = try TestCluster(schema: Self.schema)
            try cluster.sql(0, "INSERT INTO customer VALUES (1, 'before');")
            #expect(try cluster.converge("SELECT name FROM customer WHERE id = 1;", to: "before\n"), "\(cluster.logs())")
            try Self.migrateStopped(cluster, 0, "ALTER TABLE customer RENAME TO customers;")
            try cluster.sql(1, "INSERT INTO customer VALUES (2, 'from node 2, old name');")
            try cluster.sql(0, "INSERT INTO customers VALUES (3, 'from node 1, new name');")
            try cluster.sql(1, "ALTER TABLE customer RENAME TO customers;")
            try cluster.sql(2, "UPDATE customer SET name = 'updated on node 3, old name' WHERE id = 1;")
            try Self.migrateStopped(cluster, 2, "ALTER TABLE customer RENAME TO customers;")
            // No -retry-parked: what waited parked applies by itself once a node migrated (its schema change, or its start).
            let expected = "1|updated on node 3, old name\n2|from node 2, old name\n3|from node 1, new name\n"
            #expect(
                try cluster.converge("SELECT id, name FROM customers ORDER BY id;", to: expected, timeout: 60),
                "\((0..<3).map { (try? cluster.sql($0, "SELECT id, name FROM customers ORDER BY id;")) ?? "?" })\n\((0..<3).map { (try? Parking.parked(cluster, $0)) ?? "?" })\n\(cluster.problems())"
            )
            for index in 0..<3 { #expect(try Parking.parked(cluster, index).hasPrefix("no parked messages"), "node \(index + 1)") }
        }
    }
}
