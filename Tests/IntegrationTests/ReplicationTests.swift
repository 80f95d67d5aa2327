import ChangeLog
import Foundation
import TestSupport
import Testing

extension ProcessTests {
    /// Replication through the real binaries: three nodes, a real nats-server cluster, writes by sqlite3.
    @Suite(.serialized) struct Replication {
        static let schema = """
            CREATE TABLE Books (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, author TEXT NOT NULL, publication_year INTEGER);
            CREATE TABLE Authors (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, birth_year INTEGER);
            CREATE TABLE kv (k INTEGER PRIMARY KEY, v);
            """

        /// HarmonyLite's end-to-end scenarios, in its order, on one cluster.
        @Test func harmonyLiteScenarios() throws {
            let cluster = try TestCluster(schema: Self.schema)
            // 1. Insert on node 1 appears on nodes 2 and 3.
            try cluster.sql(0, "INSERT INTO Books (id, title, author, publication_year) VALUES (1, 'Dune', 'Frank Herbert', 1965);")
            #expect(try cluster.converge("SELECT title FROM Books WHERE id = 1;", to: "Dune\n"), "\(cluster.logs())")
            // 2. Update.
            try cluster.sql(0, "UPDATE Books SET title = 'Dune Messiah' WHERE id = 1;")
            #expect(try cluster.converge("SELECT title FROM Books WHERE id = 1;", to: "Dune Messiah\n"))
            // 3. Delete.
            try cluster.sql(0, "DELETE FROM Books WHERE id = 1;")
            #expect(try cluster.converge("SELECT count(*) FROM Books;", to: "0\n"))
            // 4. Last writer wins: node 2 writes 100 ms after node 1.
            try cluster.sql(0, "INSERT INTO Books (id, title, author) VALUES (2, 'Original', 'A');")
            #expect(try cluster.converge("SELECT title FROM Books WHERE id = 2;", to: "Original\n"))
            try cluster.sql(0, "UPDATE Books SET title = 'Node1 Update' WHERE id = 2;")
            Thread.sleep(forTimeInterval: 0.1)
            try cluster.sql(1, "UPDATE Books SET title = 'Node2 Update' WHERE id = 2;")
            #expect(try cluster.converge("SELECT title FROM Books WHERE id = 2;", to: "Node2 Update\n"))
            // 5. Multi-table.
            try cluster.sql(
                0,
                "INSERT INTO Authors (id, name, birth_year) VALUES (7, 'Ursula K. Le Guin', 1929); INSERT INTO Books (id, title, author) VALUES (3, 'The Dispossessed', 'Ursula K. Le Guin');"
            )
            #expect(
                try cluster.converge(
                    "SELECT (SELECT name FROM Authors WHERE id = 7) || '/' || (SELECT title FROM Books WHERE id = 3);",
                    to: "Ursula K. Le Guin/The Dispossessed\n"))
            // 6. 100 inserts.
            try cluster.sql(0, (100..<200).map { "INSERT INTO Books (id, title, author) VALUES (\($0), 'Book \($0)', 'Bulk');" }.joined())
            #expect(try cluster.converge("SELECT count(*), sum(id) FROM Books WHERE author = 'Bulk';", to: "100|14950\n"))
            // 7. A node down catches up when it returns.
            cluster.stop(2)
            try cluster.sql(0, "INSERT INTO Books (id, title, author) VALUES (500, 'While you were away', 'N1');")
            try cluster.sql(1, "UPDATE Books SET title = 'Changed while away' WHERE id = 3;")
            try cluster.start(2)
            try cluster.node(2).waitUntilReady(timeout: 60)
            #expect(
                try cluster.converge("SELECT title FROM Books WHERE id IN (3, 500) ORDER BY id;", to: "Changed while away\nWhile you were away\n"),
                "\(cluster.logs())")
            // Every node ends with the same rows in every table.
            #expect(try cluster.agree("SELECT * FROM Books ORDER BY id; SELECT * FROM Authors ORDER BY id;") != nil)
        }

        @Test func concurrentConflictingWritesConverge() throws {
            let cluster = try TestCluster(schema: Self.schema)
            let paths = (0..<3).map(cluster.path)
            let writers = (0..<3).map { index in
                Thread {
                    for round in 0..<20 {
                        let statements = (0..<10).map { key in
                            "INSERT INTO kv VALUES (\(key), 'n\(index)-r\(round)') ON CONFLICT(k) DO UPDATE SET v = excluded.v;"
                                + (key % 4 == round % 4 ? "DELETE FROM kv WHERE k = \(key);" : "")
                        }.joined()
                        _ = try? runCommand(
                            "/usr/bin/sqlite3", ["-cmd", ".timeout 5000", paths[index], "PRAGMA trusted_schema=OFF; BEGIN;" + statements + "COMMIT;"])
                    }
                }
            }
            writers.forEach { $0.start() }
            Thread.sleep(forTimeInterval: 3)
            let agreed = try cluster.agree("SELECT k, v FROM kv ORDER BY k;", timeout: 40)
            let contents = try (0..<3).map { try cluster.sql($0, "SELECT k, v FROM kv ORDER BY k;") }
            #expect(agreed != nil, "\(contents)")
        }

        /// Each process of node 1 is SIGKILLed in turn while a burst of single-row transactions is written on
        /// node 1: afterwards every row exists exactly once, with its value, on every node.
        @Test(arguments: ["capturer", "broker", "applier", "nats"])
        func killedProcessLosesNothing(victim: String) throws {
            let cluster = try TestCluster(schema: Self.schema, extraTOML: Array(repeating: "[workers.\(victim)]\nrestart_backoff_initial = 50\n", count: 3))
            let path = cluster.path(0)
            let writer = Thread {
                for chunk in 0..<40 {
                    let statements = (0..<50).map { "INSERT INTO kv VALUES (\(chunk * 50 + $0), 'row \(chunk * 50 + $0)');" }.joined()
                    _ = try? runCommand("/usr/bin/sqlite3", ["-cmd", ".timeout 10000", path, "PRAGMA trusted_schema=OFF;" + statements])
                }
            }
            writer.start()
            #expect(try cluster.converge("SELECT count(*) > 200 FROM kv;", to: "1\n", on: [0]))
            let pid = try #require(cluster.node(0).children()[victim])
            kill(pid, SIGKILL)
            let atKill = Int(try cluster.sql(0, "SELECT count(*) FROM kv;").dropLast()) ?? 0
            #expect(atKill < 2000, "the burst was over before the kill")
            #expect(eventually(timeout: 15) { cluster.node(0).children()[victim].map { $0 != pid } ?? false })
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "2000\n", on: [0], timeout: 60), "the writer did not finish")
            let expected = "2000|1999000|2000\n"
            let query = "SELECT count(*), sum(k), count(DISTINCT v) FROM kv WHERE v = 'row ' || k;"
            let converged = try cluster.converge(query, to: expected, timeout: 60)
            let answers = try (0..<3).map { try cluster.sql($0, query) }
            #expect(converged, "\(answers)\n\(cluster.problems())")
        }

        /// Many small publishes spread over four shards all arrive. (Credit has to come back one for one:
        /// when several fetched batches went to the applier as one frame, it returned one credit for them,
        /// and consumption would have stopped once the credit leaked away.)
        @Test func fourShardsDeliverEverything() throws {
            let cluster = try TestCluster(size: 2, schema: Self.schema, extraTOML: Array(repeating: "[replication_log]\nshards = 4\n", count: 2))
            for chunk in 0..<10 {
                try cluster.sql(0, (0..<1000).map { "INSERT INTO kv VALUES (\(chunk * 1000 + $0), 'row');" }.joined())
            }
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "10000\n", on: [1], timeout: 60), "\(cluster.logs().suffix(3000))")
        }

        /// A change node 2 cannot apply (its table does not exist there) is parked, and the shard goes on:
        /// what came before and after it is applied, and it applies too once the table exists. Node 2 is down
        /// while node 1 publishes the three changes one message each, so they reach its applier together:
        /// the batch fails as a whole, then goes one message at a time, and only the failing one is parked.
        @Test func unapplicableChangeIsParkedAndAppliedOnceTheTableExists() throws {
            let cluster = try TestCluster(size: 3, schema: Self.schema)
            cluster.stop(1)
            let unpublished =
                "SELECT count(*) FROM __harmonylite___change_log_global WHERE id > (SELECT value FROM __harmonylite___meta WHERE key = 'published_through');"
            try cluster.sql(0, "CREATE TABLE films (id INTEGER PRIMARY KEY, title TEXT);")
            #expect(
                try cluster.converge(
                    "SELECT count(*) FROM sqlite_master WHERE name = '__harmonylite__films_change_log_on_insert';", to: "1\n", on: [0], timeout: 10))
            for statement in ["INSERT INTO kv VALUES (1, 'before');", "INSERT INTO films VALUES (1, 'Metropolis');", "INSERT INTO kv VALUES (2, 'after');"] {
                try cluster.sql(0, statement)
                #expect(try cluster.converge(unpublished, to: "0\n", on: [0], timeout: 10), "node 1 did not publish \(statement)")
            }
            try cluster.start(1)
            #expect(try cluster.converge("SELECT group_concat(v) FROM kv;", to: "before,after\n", on: [1]), "\(cluster.node(1).log.suffix(6000))")
            #expect(eventually(timeout: 10) { cluster.node(1).log.contains("table films is not replicated here") }, "\(cluster.logs().suffix(3000))")
            #expect(try cluster.sql(1, "SELECT count(*), min(sequence) FROM __harmonylite___parked;") == "1|2\n")
            try cluster.sql(1, "CREATE TABLE films (id INTEGER PRIMARY KEY, title TEXT);")
            #expect(
                try cluster.converge(
                    "SELECT (SELECT title FROM films) || '/' || (SELECT group_concat(v) FROM kv);", to: "Metropolis/before,after\n", on: [1], timeout: 40),
                "\(cluster.logs().suffix(3000))")
            #expect(try cluster.sql(1, "SELECT count(*) FROM __harmonylite___parked;") == "0\n")
        }

        /// The stored cursor and its seq map mirror follow what was applied. The writing node receives only
        /// its own messages, which it skips without writing; it stores the cursor over them within a second,
        /// and at the latest when it stops. The seq map always equals the stored cursor once things settle,
        /// and never shows more than the database holds.
        @Test func cursorAndSeqMapFollowWhatWasApplied() throws {
            let cluster = try TestCluster(size: 2, schema: Self.schema)
            try cluster.sql(0, (0..<50).map { "INSERT INTO kv VALUES (\($0), 'row');" }.joined())
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "50\n", on: [1]))
            let cursorQuery = "SELECT value FROM __harmonylite___meta WHERE key = 'cursor:harmonylite-changes-1';"
            let seqMaps = (0..<2).map { cluster.directory.path + "/node\($0 + 1)-seq-map.cbor" }
            var applied = ""
            let settled = try eventually(timeout: 10) {
                applied = try cluster.sql(1, cursorQuery)
                let mirrored = try SeqMapFile.read(seqMaps[1])?["harmonylite-changes-1"]
                return !applied.isEmpty && mirrored.map { "\($0)\n" } == applied
            }
            #expect(settled, "node 2 stored \(applied), its seq map says \(String(describing: try? SeqMapFile.read(seqMaps[1])))")
            // Node 1 skipped its own messages; its cursor reaches node 2's without another write by anyone.
            #expect(try cluster.converge(cursorQuery, to: applied, on: [0], timeout: 5))
            try cluster.sql(0, "INSERT INTO kv VALUES (100, 'last');")
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "51\n", on: [1]))
            // Well inside the second node 1 waits before storing a cursor over its own messages.
            Thread.sleep(forTimeInterval: 0.3)
            cluster.stop(0)
            let stored = try cluster.sql(0, cursorQuery)
            #expect(try cluster.sql(1, cursorQuery) == stored, "node 1 stopped without storing the cursor over its own last message")
            #expect(try SeqMapFile.read(seqMaps[0])?["harmonylite-changes-1"].map { "\($0)\n" } == stored)
        }

        /// A table created (on every node, as DDL is not replicated) while the nodes run replicates without a
        /// restart; so does a column added to an existing one.
        @Test func tablesCreatedLaterReplicateWithoutRestart() throws {
            let cluster = try TestCluster(size: 2, schema: Self.schema)
            for index in 0..<2 {
                try cluster.sql(index, "CREATE TABLE films (id INTEGER PRIMARY KEY, title TEXT); ALTER TABLE kv ADD COLUMN note TEXT;")
            }
            // The capturer notices the schema change at its next look at the database.
            #expect(
                try cluster.converge(
                    "SELECT count(*) FROM sqlite_master WHERE name = '__harmonylite__films_change_log_on_insert';", to: "1\n", on: [0], timeout: 10))
            try cluster.sql(0, "INSERT INTO films VALUES (1, 'Metropolis'); INSERT INTO kv VALUES (1, 'v', 'with a note');")
            #expect(
                try cluster.converge(
                    "SELECT (SELECT title FROM films WHERE id = 1) || '/' || (SELECT note FROM kv WHERE k = 1);", to: "Metropolis/with a note\n", on: [1]),
                "\(cluster.logs().suffix(3000))")
            // Rows written in the same transaction that created their table, before any trigger existed.
            try cluster.sql(1, "CREATE TABLE posters (id INTEGER PRIMARY KEY, film TEXT);")
            try cluster.sql(
                0, "BEGIN; CREATE TABLE posters (id INTEGER PRIMARY KEY, film TEXT); INSERT INTO posters VALUES (1, 'Metropolis'), (2, 'M'); COMMIT;")
            #expect(try cluster.converge("SELECT group_concat(film) FROM posters;", to: "Metropolis,M\n", on: [1]), "\(cluster.logs().suffix(3000))")
        }

        @Test func valuesArriveBitIdentical() throws {
            let cluster = try TestCluster(size: 2, schema: "CREATE TABLE v (id INTEGER PRIMARY KEY, x);")
            try cluster.sql(
                0,
                """
                INSERT INTO v VALUES (1, NULL), (2, 9223372036854775807), (3, -9223372036854775808), (4, 0.0), (5, -0.0),
                  (6, 1.7976931348623157e308), (7, 0.1), (8, ''), (9, x''), (10, x'00000000'), (11, 'ünïcødé ☃ 𝄞'),
                  (12, '2024-01-02 03:04:05.678'), (13, printf('%.*c', 200000, 'x')), (14, CAST(x'610062' AS TEXT)), (15, 4.9e-324);
                """)
            let query = "SELECT id, typeof(x), CASE typeof(x) WHEN 'real' THEN ieee754(x) ELSE hex(x) END FROM v ORDER BY id;"
            let expected = try cluster.sql(0, query)
            #expect(try cluster.converge(query, to: expected, on: [1]), "\(cluster.logs())")
        }

        @Test func publishFalseCapturesButNeverSends() throws {
            let cluster = try TestCluster(size: 2, schema: Self.schema, extraTOML: ["", "publish = false\n"])
            try cluster.sql(1, "INSERT INTO Books (id, title, author) VALUES (1, 'Only on node 2', 'x');")
            try cluster.sql(0, "INSERT INTO Books (id, title, author) VALUES (2, 'From node 1', 'x');")
            #expect(try cluster.converge("SELECT title FROM Books WHERE id = 2;", to: "From node 1\n", on: [1]))
            Thread.sleep(forTimeInterval: 2)
            #expect(try cluster.sql(0, "SELECT count(*) FROM Books WHERE id = 1;") == "0\n")
            #expect(
                try cluster.sql(
                    1,
                    "SELECT count(*) FROM __harmonylite___change_log_global WHERE id > (SELECT value FROM __harmonylite___meta WHERE key = 'published_through');"
                ) == "0\n")
        }

        @Test func replicateFalseAppliesNothing() throws {
            let cluster = try TestCluster(size: 2, schema: Self.schema, extraTOML: ["", "replicate = false\n"])
            try cluster.sql(0, "INSERT INTO Books (id, title, author) VALUES (1, 'From node 1', 'x');")
            try cluster.sql(1, "INSERT INTO Books (id, title, author) VALUES (2, 'From node 2', 'x');")
            #expect(try cluster.converge("SELECT group_concat(id) FROM Books;", to: "1,2\n", on: [0]), "node 2's writes still go out")
            Thread.sleep(forTimeInterval: 2)
            #expect(try cluster.sql(1, "SELECT group_concat(id) FROM Books;") == "2\n")
        }
    }
}
