import Foundation
import TestSupport
import Testing

extension ProcessTests {
    /// Keys real schemas have that replication cannot carry never break the application's writes or the
    /// other tables: NULL in a rowid table's primary key, and a key collation only the application defines
    /// (a table created that way while the nodes run).
    @Suite(.serialized) struct UnusualKeys {
        @Test func unusualKeysNeverBreakTheApplicationOrTheOtherTables() throws {
            let cluster = try TestCluster(schema: "CREATE TABLE kv (k INTEGER PRIMARY KEY, v); CREATE TABLE tags (name TEXT PRIMARY KEY, n INTEGER);")
            try cluster.sql(0, "INSERT INTO tags VALUES (NULL, 1); INSERT INTO tags VALUES ('a', 2); INSERT INTO tags VALUES (NULL, 3);")
            #expect(try cluster.converge("SELECT count(*), group_concat(name || '=' || n) FROM tags;", to: "1|a=2\n", on: [1, 2]), "\(cluster.problems())")
            #expect(try cluster.sql(0, "SELECT count(*) FROM tags;") == "3\n")
            // An application that defines its own collation creates a table keyed by it, on every node.
            for index in 0..<3 {
                let python =
                    "import sqlite3; c = sqlite3.connect('\(cluster.path(index))', timeout=10); "
                    + "c.create_collation('reverse', lambda a, b: (b > a) - (b < a)); "
                    + "c.execute('CREATE TABLE odd (k TEXT COLLATE reverse PRIMARY KEY, v)'); c.execute(\"INSERT INTO odd VALUES ('x', 1)\"); c.commit()"
                let made = try runCommand("/usr/bin/env", ["python3", "-c", python])
                #expect(made.status == 0, "\(made.output)")
            }
            try cluster.sql(0, "INSERT INTO kv VALUES (1, 'after the odd table');")
            try cluster.sql(2, "INSERT INTO tags VALUES ('b', 4);")
            #expect(
                try cluster.converge("SELECT (SELECT v FROM kv WHERE k = 1) || '/' || (SELECT n FROM tags WHERE name = 'b');", to: "after the odd table/4\n"),
                "\(cluster.problems())")
            for index in 0..<3 {
                #expect(eventually(timeout: 10) { cluster.node(index).log.contains("collation reverse") }, "node \(index + 1): \(cluster.problems())")
            }
        }
    }
}
