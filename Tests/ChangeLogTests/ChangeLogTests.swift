import Foundation
import TestSupport
import Testing

@testable import ChangeEvents
@testable import ChangeLog
@testable import SQLiteKit

/// Capture, read and apply on real database files, with the application's writes made by the sqlite3 shell.
@Suite struct ChangeLogTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    func database(_ name: String, _ schema: String) throws -> String {
        let path = directory.path + "/" + name
        try makeDatabase(path, "PRAGMA journal_mode=WAL;" + schema)
        return path
    }

    /// A database with `schema`, the change logs installed for `node`.
    func installed(_ schema: String = Self.schema, node: UInt64 = 1) throws -> (path: String, db: SQLiteDatabase, installation: ChangeLogInstallation) {
        let path = try database("a.db", schema)
        let db = try SQLiteDatabase(existingPath: path)
        return (path, db, try ChangeLogInstaller.install(in: db, node: node))
    }

    /// The application: a separate sqlite3 process with HarmonyLite-hostile settings.
    @discardableResult
    func app(_ path: String, _ sql: String) throws -> String {
        let result = try runCommand("/usr/bin/sqlite3", [path, "PRAGMA trusted_schema=OFF;" + sql])
        guard result.status == 0 else { throw TestFailure("sqlite3: \(result.output)") }
        return result.output
    }

    static let schema = """
        CREATE TABLE books(id INTEGER PRIMARY KEY, title TEXT NOT NULL, year INTEGER);
        CREATE TABLE pairs(a TEXT COLLATE NOCASE, b INTEGER, v BLOB, PRIMARY KEY (a, b)) WITHOUT ROWID;
        CREATE TABLE logbook(line TEXT);
        CREATE VIRTUAL TABLE docs USING fts5(body);
        """

    @Test func tablesAreClassifiedAndRefusalsSayWhy() throws {
        let path = try database("a.db", Self.schema)
        let installation = try ChangeLogInstaller.install(in: SQLiteDatabase(existingPath: path), node: 1)
        #expect(installation.catalog.replicated.map(\.name) == ["books", "pairs"])
        let refused = Dictionary(uniqueKeysWithValues: installation.catalog.refused.map { ($0.name, $0.reason) })
        #expect(refused["logbook"]?.contains("no PRIMARY KEY") == true)
        #expect(refused["docs"]?.contains("virtual table") == true)
        #expect(refused["docs_data"]?.contains("shadow table") == true)
        #expect(installation.catalog.table(named: "pairs")?.primaryKey.map(\.collation) == ["NOCASE", "BINARY"])
        // Refused tables keep working for the application and capture nothing.
        try app(path, "INSERT INTO logbook VALUES ('x'); INSERT INTO docs VALUES ('hello');")
        #expect(try app(path, "SELECT count(*) FROM __harmonylite___change_log_global;") == "0\n")
    }

    @Test func applicationWritesAreCapturedWithTrustedSchemaOff() throws {
        let (path, db, installation) = try installed(node: 42)
        try app(
            path,
            """
            INSERT INTO books VALUES (1, 'Dune', 1965), (2, 'Emma', 1815);
            UPDATE books SET year = 1966 WHERE id = 1;
            DELETE FROM books WHERE id = 2;
            INSERT INTO pairs VALUES ('k', 1, x'00ff00');
            """)
        let reader = try ChangeReader(database: db, installation: installation)
        let pending = try reader.pending(after: 0, limit: 100)
        #expect(pending.throughID == 5)
        let byKey = Dictionary(uniqueKeysWithValues: pending.events.map { ("\($0.table)/\($0.key.first!)", $0) })
        #expect(pending.events.count == 3, "the two writes to book 1 became one event")
        let dune = try #require(byKey["books/1"])
        #expect(dune.operation == .upsert && dune.values == [.integer(1), .text("Dune"), .integer(1966)])
        #expect(dune.writer == 42 && dune.changeID == 3)
        let emma = try #require(byKey["books/2"])
        #expect(emma.operation == .delete && emma.values == [.integer(2)])
        let pair = try #require(byKey["pairs/'k'"])
        #expect(pair.values == [.text("k"), .integer(1), .blob([0, 255, 0])] && pair.keyCount == 2)
        // Stamps are milliseconds since 1970 in the high 48 bits.
        let milliseconds = Int64(Date().timeIntervalSince1970 * 1000)
        #expect(abs(Int64(dune.stamp >> 16) - milliseconds) < 60_000)
        #expect(abs(Int64(emma.stamp >> 16) - milliseconds) < 60_000)
    }

    @Test func keyChangingUpdateIsADeleteAndAWrite() throws {
        let (path, db, installation) = try installed(node: 1)
        try app(path, "INSERT INTO books VALUES (1, 'Dune', 1965);")
        let watermark = try #require(try ChangeReader(database: db, installation: installation).pending(after: 0, limit: 10).throughID)
        try app(path, "UPDATE books SET id = 10 WHERE id = 1;")
        let events = try ChangeReader(database: db, installation: installation).pending(after: watermark, limit: 10).events
        #expect(events.map(\.operation) == [.delete, .upsert])
        #expect(events.map { $0.key.first } == [.integer(1), .integer(10)])
    }

    @Test func stampsOfOneRowNeverGoBackwards() throws {
        let (path, _, _) = try installed(node: 1)
        // A stored stamp far in the future stands for a clock that stepped back since the last write.
        let future: Int64 = (Int64(Date().timeIntervalSince1970 * 1000) + 3_600_000) << 16
        try app(path, "INSERT INTO books VALUES (1, 'a', 1);")
        try stampPending(path)
        try app(path, "UPDATE __harmonylite__books_change_log SET __harmonylite__hlc = \(future);")
        try app(path, "UPDATE books SET title = 'b' WHERE id = 1;")
        try stampPending(path)
        #expect(try app(path, "SELECT __harmonylite__hlc FROM __harmonylite__books_change_log;") == "\(future + 1)\n")
    }

    @Test func appliedChangesAreNotCapturedAndOlderOnesLose() throws {
        let (path, db, installation) = try installed(node: 1)
        let applier = try ChangeApplier(database: db, catalog: installation.catalog)
        let columns = ["id", "title", "year"]
        let newer = ChangeEvent(
            changeID: 1, table: "books", operation: .upsert, stamp: 2000 << 16, writer: 2, columns: columns, values: [.integer(1), .text("new"), .integer(2)],
            keyCount: 1)
        let older = ChangeEvent(
            changeID: 2, table: "books", operation: .upsert, stamp: 1000 << 16, writer: 3, columns: columns, values: [.integer(1), .text("old"), .integer(1)],
            keyCount: 1)
        let outcome = try applier.apply([newer, older, newer], cursor: ["s-1": 7])
        #expect(outcome == .init(applied: 1, superseded: 2))
        #expect(try app(path, "SELECT title FROM books; SELECT count(*) FROM __harmonylite___change_log_global;") == "new\n0\n")
        #expect(try applier.storedCursor() == ["s-1": 7])
        // Same stamp, higher writer wins the tie; a delete leaves a tombstone older writes cannot pass.
        let tie = ChangeEvent(
            changeID: 3, table: "books", operation: .delete, stamp: 2000 << 16, writer: 9, columns: ["id"], values: [.integer(1)], keyCount: 1)
        #expect(try applier.apply([tie]).applied == 1)
        #expect(try applier.apply([newer]).superseded == 1)
        #expect(try app(path, "SELECT count(*) FROM books;") == "0\n")
    }

    /// Stamps and node ids are unsigned 64-bit; the row clock stores their signed bit patterns. The winner
    /// must be the same as `ChangeEvent.supersedes` decides, also with the top bit set.
    @Test func lastWriterWinsComparesStampsAndWritersUnsigned() throws {
        let (path, db, installation) = try installed(node: 1)
        let applier = try ChangeApplier(database: db, catalog: installation.catalog)
        func write(_ title: String, stamp: UInt64, writer: UInt64) -> ChangeEvent {
            ChangeEvent(
                changeID: 1, table: "books", operation: .upsert, stamp: stamp, writer: writer, columns: ["id", "title"], values: [.integer(1), .text(title)],
                keyCount: 1)
        }
        let high: UInt64 = 1 << 63 | 5
        #expect(try applier.apply([write("small writer", stamp: 7 << 16, writer: 3)]).applied == 1)
        #expect(try applier.apply([write("high writer", stamp: 7 << 16, writer: high)]).applied == 1)
        #expect(try applier.apply([write("small writer again", stamp: 7 << 16, writer: 4)]).superseded == 1)
        #expect(try applier.apply([write("high stamp", stamp: high, writer: 2)]).applied == 1)
        #expect(try applier.apply([write("lower stamp", stamp: 1 << 62, writer: high)]).superseded == 1)
        #expect(try applier.apply([write("higher stamp", stamp: high + 1, writer: 2)]).applied == 1)
        #expect(try app(path, "SELECT title FROM books;") == "higher stamp\n")
    }

    @Test func unknownTablesAndColumnsAreErrorsAndRollBack() throws {
        let (path, db, installation) = try installed(node: 1)
        let applier = try ChangeApplier(database: db, catalog: installation.catalog)
        let good = ChangeEvent(
            changeID: 1, table: "books", operation: .upsert, stamp: 5, writer: 2, columns: ["id", "title"], values: [.integer(1), .text("x")], keyCount: 1)
        let missingTable = ChangeEvent(
            changeID: 2, table: "films", operation: .upsert, stamp: 5, writer: 2, columns: ["id"], values: [.integer(1)], keyCount: 1)
        let missingColumn = ChangeEvent(
            changeID: 3, table: "books", operation: .upsert, stamp: 5, writer: 2, columns: ["id", "title", "rating"],
            values: [.integer(2), .text("y"), .integer(5)], keyCount: 1)
        let tableError = #expect(throws: ApplyError.self) { try applier.apply([good, missingTable]) }
        #expect(tableError?.description.contains("table films is not replicated here") == true)
        let columnError = #expect(throws: ApplyError.self) { try applier.apply([good, missingColumn]) }
        #expect(columnError?.description.contains("column rating does not exist") == true)
        #expect(try app(path, "SELECT count(*) FROM books;") == "0\n", "nothing of a failed batch is applied")
        // Once the table exists (created after the applier started), the same events apply.
        try app(path, "CREATE TABLE films(id INTEGER PRIMARY KEY); ALTER TABLE books ADD COLUMN rating INTEGER;")
        #expect(try applier.apply([good, missingTable, missingColumn]).applied == 3)
    }

    @Test func addingAColumnKeepsApplicationWritesWorking() throws {
        let (path, db, _) = try installed(node: 1)
        try app(path, "ALTER TABLE books ADD COLUMN rating INTEGER; INSERT INTO books VALUES (1, 'Dune', 1965, 5);")
        let installation = try ChangeLogInstaller.install(in: db, node: 1)
        let events = try ChangeReader(database: db, installation: installation).pending(after: 0, limit: 10).events
        #expect(events.first?.columns == ["id", "title", "year", "rating"])
        #expect(events.first?.values.last == .integer(5))
    }

    @Test func installIsIdempotentAndQueueIdsNeverRestart() throws {
        let path = try database("a.db", Self.schema)
        let db = try SQLiteDatabase(existingPath: path)
        let first = try ChangeLogInstaller.install(in: db, node: 1)
        let second = try ChangeLogInstaller.install(in: db, node: 1)
        #expect(first.incarnation == second.incarnation && first.tableIDs == second.tableIDs && first.schemaHash == second.schemaHash)
        #expect(first.schemaHash.count == 64)
        try app(path, "INSERT INTO books VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3);")
        try PublishWatermark.write(3, to: db)
        #expect(try PublishWatermark.removePublished(from: db) == 0, "entries not stamped yet are kept")
        try stampPending(path)
        #expect(try PublishWatermark.removePublished(from: db) == 2)
        try app(path, "INSERT INTO books VALUES (4, 'd', 4);")
        #expect(try app(path, "SELECT group_concat(id) FROM __harmonylite___change_log_global;") == "3,4\n")
        // A schema change changes the hash.
        try app(path, "ALTER TABLE books ADD COLUMN rating INTEGER;")
        #expect(try ChangeLogInstaller.install(in: db, node: 1).schemaHash != first.schemaHash)
    }

    /// Rows a table already holds when its triggers are installed are captured if the table is new since the
    /// last installation, and not at the very first installation (every node starts from the same data).
    @Test func rowsOfATableThatAppearedLaterAreCaptured() throws {
        let path = try database("a.db", Self.schema + "INSERT INTO books VALUES (1, 'before us', 1);")
        let db = try SQLiteDatabase(existingPath: path)
        let first = try ChangeLogInstaller.install(in: db, node: 1)
        #expect(try ChangeReader(database: db, installation: first).pending(after: 0, limit: 100).events.isEmpty)
        try app(path, "BEGIN; CREATE TABLE films(id INTEGER PRIMARY KEY, title TEXT); INSERT INTO films VALUES (7, 'Metropolis'), (8, 'M'); COMMIT;")
        let second = try ChangeLogInstaller.install(in: db, node: 1)
        #expect(second.notes.contains { $0.contains("films") && $0.contains("2 row(s)") }, "\(second.notes)")
        let events = try ChangeReader(database: db, installation: second).pending(after: 0, limit: 100).events
        #expect(events.map(\.table) == ["films", "films"] && events.map { Array($0.key) } == [[.integer(7)], [.integer(8)]])
        #expect(events.map(\.operation) == [.upsert, .upsert])
        #expect(events.map { $0.values.last } == [.text(Array("Metropolis".utf8)), .text(Array("M".utf8))])
        // Installing again captures nothing more.
        _ = try ChangeLogInstaller.install(in: db, node: 1)
        #expect(try app(path, "SELECT count(*) FROM __harmonylite___change_log_global;") == "2\n")
    }

    /// Values written by the shell arrive on another database with the same storage class and bytes.
    @Test func valuesArriveBitIdentical() throws {
        let schema = "CREATE TABLE v(id INTEGER PRIMARY KEY, x);"
        let source = try database("src.db", schema)
        let target = try database("dst.db", schema)
        let sourceDB = try SQLiteDatabase(existingPath: source)
        let installation = try ChangeLogInstaller.install(in: sourceDB, node: 1)
        let targetDB = try SQLiteDatabase(existingPath: target)
        let targetInstallation = try ChangeLogInstaller.install(in: targetDB, node: 2)
        try app(
            source,
            """
            INSERT INTO v VALUES (1, NULL), (2, 9223372036854775807), (3, -9223372036854775808), (4, 0.0), (5, -0.0),
              (6, 1e308), (7, 0.1), (8, ''), (9, x''), (10, x'000000'), (11, 'ünïcødé ☃ 𝄞'), (12, '2024-01-02 03:04:05'),
              (13, printf('%.*c', 100000, 'x')), (14, CAST(x'610062' AS TEXT)), (15, '1e3'), (16, 4.9e-324);
            """)
        let events = try ChangeReader(database: sourceDB, installation: installation).pending(after: 0, limit: 100).events
        let wire = ChangeBatch(origin: 1, schemaHash: installation.schemaHash, events: events).encoded(compress: true)
        let received = try ChangeBatch(decoding: wire)
        #expect(try ChangeApplier(database: targetDB, catalog: targetInstallation.catalog).apply(received.events).applied == 16)
        // hex() of a REAL formats it as text first; ieee754() shows the bits (and the sign of -0.0).
        let query = "SELECT id, typeof(x), CASE typeof(x) WHEN 'real' THEN ieee754(x) ELSE hex(x) END FROM v ORDER BY id;"
        let expected = try app(source, query)
        #expect(try app(target, query) == expected)
        #expect(expected.contains("5|real|ieee754(1,-3071)"), "-0.0 kept its sign bit: \(expected.prefix(400))")
    }

    /// Three nodes write conflicting changes to the same rows, then each applies the others' events in its
    /// own random order, some twice: every node ends with the same rows. Even seeds start every row clock
    /// at one shared future stamp, so concurrent writes get equal stamps and the writer breaks the tie.
    @Test(arguments: 1...12)
    func nodesConvergeWhateverTheArrivalOrder(seed: Int) throws {
        var rng = SplitMix64(seed: UInt64(seed))
        // Each node: the application's connection, and the applier's own (in the replica role, as in the applier process).
        var nodes: [(db: SQLiteDatabase, installation: ChangeLogInstallation, path: String, applier: ChangeApplier)] = []
        let future = (Int64(Date().timeIntervalSince1970 * 1000) + 3_600_000) << 16
        for index in 1...3 {
            let path = try database("n\(index).db", "CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT, n INTEGER);")
            let db = try SQLiteDatabase(existingPath: path)
            let installation = try ChangeLogInstaller.install(in: db, node: UInt64(index))
            nodes.append((db, installation, path, try ChangeApplier(database: SQLiteDatabase(existingPath: path), catalog: installation.catalog)))
            if seed % 2 == 0 {
                for key in 0..<16 {
                    try db.execute("INSERT INTO __harmonylite__kv_change_log VALUES (\(key), \(future), 0, 1)")
                }
            }
        }
        var published: [[ChangeEvent]] = [[], [], []]
        for round in 0..<4 {
            for (index, node) in nodes.enumerated() {
                var sql = "BEGIN;"
                for _ in 0..<15 {
                    let key = rng.next() % 8
                    switch rng.next() % 4 {
                    case 0: sql += "DELETE FROM kv WHERE k = \(key);"
                    case 1: sql += "UPDATE kv SET k = \(key + 8) WHERE k = \(key) AND NOT EXISTS (SELECT 1 FROM kv WHERE k = \(key + 8));"
                    default:
                        sql +=
                            "INSERT INTO kv VALUES (\(key), 'n\(index)r\(round)', \(rng.next() % 100)) ON CONFLICT(k) DO UPDATE SET v = excluded.v, n = excluded.n;"
                    }
                }
                try node.db.execute(sql + "COMMIT;")
                let reader = try ChangeReader(database: node.db, installation: node.installation)
                let watermark = try PublishWatermark.read(node.db)
                let pending = try reader.pending(after: watermark, limit: 1000)
                if let through = pending.throughID { try PublishWatermark.write(through, to: node.db) }
                published[index] += pending.events
            }
            // Deliver a random part of what is published so far, interleaving with further writes.
            for (index, node) in nodes.enumerated() {
                var incoming = published.enumerated().filter { $0.offset != index }.flatMap(\.element)
                incoming.shuffle(using: &rng)
                _ = try node.applier.apply(Array(incoming.prefix(Int(rng.next() % UInt64(incoming.count + 1)))))
            }
        }
        for (index, node) in nodes.enumerated() {
            var incoming = published.enumerated().filter { $0.offset != index }.flatMap(\.element)
            incoming.shuffle(using: &rng)
            _ = try node.applier.apply(incoming + incoming.prefix(5))
        }
        let contents = try nodes.map { try app($0.path, "SELECT k, quote(v), n FROM kv ORDER BY k;") }
        #expect(contents[0] == contents[1] && contents[1] == contents[2], "diverged:\n\(contents.joined(separator: "\n--\n"))")
        #expect(!contents[0].isEmpty)
    }
}

/// Schemas real applications have that must never break capture, or the application's own writes.
@Suite struct ApplicationSchemaTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    func app(_ path: String, _ sql: String) throws -> String {
        let result = try runCommand("/usr/bin/sqlite3", [path, "PRAGMA trusted_schema=OFF;" + sql])
        guard result.status == 0 else { throw TestFailure("sqlite3: \(result.output)") }
        return result.output
    }

    func queued(_ path: String) throws -> String {
        try app(path, "SELECT count(*) FROM __harmonylite___change_log_global;")
    }

    /// SQLite allows NULL in a rowid table's non-INTEGER primary key. Such rows name no row elsewhere; they
    /// are not captured, and the application's write must not fail because of our row clocks.
    @Test func aNullKeyNeverFailsTheApplicationsWrite() throws {
        let path = directory.path + "/n.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE tags (name TEXT PRIMARY KEY, n INTEGER);")
        let installation = try ChangeLogInstaller.install(in: SQLiteDatabase(existingPath: path), node: 1)
        #expect(installation.catalog.replicated.map(\.name) == ["tags"])
        try app(
            path,
            "INSERT INTO tags VALUES (NULL, 1); INSERT INTO tags VALUES (NULL, 2); INSERT INTO tags VALUES ('a', 3); UPDATE tags SET n = 4; DELETE FROM tags WHERE name IS NULL;"
        )
        #expect(try app(path, "SELECT count(*) FROM tags;") == "1\n")
        #expect(try queued(path) == "2\n")  // 'a': insert and update; nothing for the NULL rows
    }

    /// A table created while the node runs, whose first rows from other nodes the applier wrote (creating
    /// its row clocks) before the capturer installed the table's triggers: the application's own rows
    /// written meanwhile are still captured, the applied ones are not taken for ours.
    @Test func aNewTablesLocalRowsAreCapturedEvenIfTheApplierCameFirst() throws {
        let path = directory.path + "/late.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE books (id INTEGER PRIMARY KEY);")
        let database = try SQLiteDatabase(existingPath: path)
        _ = try ChangeLogInstaller.install(in: database, node: 1)
        try app(path, "CREATE TABLE late (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO late VALUES (1, 'mine');")
        let remote = ChangeEvent(
            changeID: 9, table: "late", operation: .upsert, stamp: 5 << 16, writer: 2, columns: ["id", "v"], values: [.integer(2), .text("theirs")], keyCount: 1
        )
        _ = try ChangeApplier(database: SQLiteDatabase(existingPath: path), catalog: TableCatalog.read(database)).apply([remote])
        let installation = try ChangeLogInstaller.install(in: database, node: 1)
        let events = try ChangeReader(database: database, installation: installation).pending(after: 0, limit: 100).events
        #expect(events.map(\.table) == ["late"])
        #expect(events.first?.key == [.integer(1)])
        #expect(events.first?.writer == 1)
    }

    /// A key collation only the application defines: that table is refused with a reason, the others install.
    @Test func anApplicationDefinedKeyCollationRefusesThatTableOnly() throws {
        let path = directory.path + "/c.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT);")
        let python =
            "import sqlite3; c = sqlite3.connect('\(path)'); c.create_collation('reverse', lambda a, b: (b > a) - (b < a)); c.execute('CREATE TABLE odd (k TEXT COLLATE reverse PRIMARY KEY, v)'); c.commit()"
        let made = try runCommand("/usr/bin/env", ["python3", "-c", python])
        #expect(made.status == 0, "\(made.output)")
        let installation = try ChangeLogInstaller.install(in: SQLiteDatabase(existingPath: path), node: 1)
        #expect(installation.catalog.replicated.map(\.name) == ["books"])
        let reason = installation.catalog.refused.first { $0.name == "odd" }?.reason ?? ""
        #expect(reason.contains("collation reverse"), "\(reason)")
        try app(path, "INSERT INTO books VALUES (1, 'Dune');")
        #expect(try queued(path) == "1\n")
    }

    /// ALTER TABLE RENAME: the renamed table is captured once, and keeps its row clocks.
    @Test func aRenamedTableIsCapturedOnceAndKeepsItsClocks() throws {
        let path = directory.path + "/r.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT);")
        let database = try SQLiteDatabase(existingPath: path)
        _ = try ChangeLogInstaller.install(in: database, node: 1)
        try app(path, "INSERT INTO books VALUES (1, 'Dune');")
        try stampPending(path)
        let stamp = try app(path, "SELECT __harmonylite__hlc FROM __harmonylite__books_change_log WHERE id = 1;")
        try app(path, "ALTER TABLE books RENAME TO novels;")
        let installation = try ChangeLogInstaller.install(in: database, node: 1)
        #expect(installation.catalog.replicated.map(\.name) == ["novels"])
        #expect(installation.notes.contains { $0.contains("books was renamed to novels") }, "\(installation.notes)")
        #expect(try app(path, "SELECT __harmonylite__hlc FROM __harmonylite__novels_change_log WHERE id = 1;") == stamp)
        #expect(try app(path, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'novels';") == "3\n")
        try app(path, "INSERT INTO novels VALUES (2, 'Emma');")
        #expect(try queued(path) == "2\n")
        try stampPending(path)
        #expect(try app(path, "SELECT count(*) FROM __harmonylite__novels_change_log;") == "2\n")
    }

    /// A table name with a double quote followed by a combining mark (one Swift Character) is quoted by
    /// Unicode scalars: no statement is split, no other table touched.
    @Test func identifiersAreQuotedByScalarsNotCharacters() throws {
        let name = "x\"\u{301}; DROP TABLE books; --"
        #expect(HarmonyLiteObjects.quoted(name) == "\"x\"\"\u{301}; DROP TABLE books; --\"")
        let path = directory.path + "/q.db"
        try makeDatabase(
            path,
            "PRAGMA journal_mode=WAL; CREATE TABLE books (id INTEGER PRIMARY KEY); CREATE TABLE \(HarmonyLiteObjects.quoted(name)) (id INTEGER PRIMARY KEY, v);"
        )
        let database = try SQLiteDatabase(existingPath: path)
        let installation = try ChangeLogInstaller.install(in: database, node: 1)
        #expect(Set(installation.catalog.replicated.map(\.name)) == ["books", name])
        _ = try HarmonyLiteObjects.removeAll(from: database)
        #expect(try app(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table';") == "2\n")
    }
}

/// Applying what real applications write: their own triggers, foreign keys, case-insensitive keys and
/// migrations while replication runs.
@Suite struct ApplyingApplicationSchemasTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    func app(_ path: String, _ sql: String) throws -> String {
        let result = try runCommand("/usr/bin/sqlite3", [path, "PRAGMA trusted_schema=OFF; PRAGMA foreign_keys=ON;" + sql])
        guard result.status == 0 else { throw TestFailure("sqlite3: \(result.output)") }
        return result.output
    }

    /// Two nodes' databases with `schema`: origin's captured changes are read and applied to the replica.
    func pair(_ schema: String) throws -> (origin: String, replica: String, replicate: () throws -> Void) {
        let origin = directory.path + "/origin.db", replica = directory.path + "/replica.db"
        try makeDatabase(origin, "PRAGMA journal_mode=WAL;" + schema)
        try makeDatabase(replica, "PRAGMA journal_mode=WAL;" + schema)
        let originDB = try SQLiteDatabase(existingPath: origin)
        _ = try ChangeLogInstaller.install(in: originDB, node: 1)
        let replicaDB = try SQLiteDatabase(existingPath: replica)
        _ = try ChangeLogInstaller.install(in: replicaDB, node: 2)
        var watermark: Int64 = 0
        let replicate = {
            // Read with a fresh installation each time (the schema may have changed), as the capturer does.
            let installation = try ChangeLogInstaller.install(in: originDB, node: 1)
            let pending = try ChangeReader(database: originDB, installation: installation).pending(after: watermark, limit: 10_000)
            watermark = pending.throughID ?? watermark
            let applier = try ChangeApplier(database: SQLiteDatabase(existingPath: replica), catalog: TableCatalog.read(replicaDB))
            // Reversed: rows of different tables travel on different shards, in any order.
            _ = try applier.apply(pending.events.reversed())
        }
        return (origin, replica, replicate)
    }

    /// Table and column names that try to end their quoting — a `"` followed by a combining mark (one Swift
    /// Character), newlines, `;` and a CREATE TABLE — are captured, replicated and cleaned up as names:
    /// no statement is split, no extra table is ever created. An event naming a table with a NUL (which no
    /// database can hold) is refused without creating anything.
    @Test func hostileIdentifiersCreateNoExtraTable() throws {
        let table = "t\"\u{301}; CREATE TABLE pwned (a); --\n\"x"
        let column = "c\"\u{308}) ; CREATE TABLE pwned2 (a); --\r\n"
        let quotedTable = HarmonyLiteObjects.quoted(table), quotedColumn = HarmonyLiteObjects.quoted(column)
        let (origin, replica, replicate) = try pair("CREATE TABLE \(quotedTable) (id INTEGER PRIMARY KEY, \(quotedColumn) TEXT);")
        try app(origin, "INSERT INTO \(quotedTable) VALUES (1, 'one'); UPDATE \(quotedTable) SET \(quotedColumn) = 'uno' WHERE id = 1;")
        try replicate()
        #expect(try app(replica, "SELECT id, \(quotedColumn) FROM \(quotedTable);") == "1|uno\n")
        let userTables = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_\\_harmonylite%' ESCAPE '\\';"
        for path in [origin, replica] {
            #expect(try app(path, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'pwned%';") == "0\n")
            #expect(try app(path, userTables) == "1\n")
        }
        let replicaDB = try SQLiteDatabase(existingPath: replica)
        let applier = try ChangeApplier(database: replicaDB, catalog: TableCatalog.read(replicaDB))
        let nul = ChangeEvent(
            changeID: 9, table: table + "\u{0}\"; CREATE TABLE pwned3 (a); --", operation: .upsert, stamp: .max, writer: 1,
            columns: ["id"], values: [.integer(2)], keyCount: 1)
        #expect(throws: (any Error).self) { try applier.apply([nul]) }
        _ = try HarmonyLiteObjects.removeAll(from: replicaDB)
        #expect(try app(replica, "SELECT count(*) FROM sqlite_master WHERE type = 'table';") == "1\n")
        #expect(try app(replica, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger';") == "0\n")
    }

    /// The replica role: an application trigger's effect arrives as rows of its own and is not computed
    /// again on the replica; a cascade's deletes arrive as deletes and do not cascade again.
    @Test func applicationTriggersAndCascadesDoNotFireAgainOnApply() throws {
        let (origin, replica, replicate) = try pair(
            """
            CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER);
            CREATE TABLE totals (name TEXT PRIMARY KEY, sum INTEGER NOT NULL);
            CREATE TRIGGER add_order AFTER INSERT ON orders BEGIN
              INSERT INTO totals VALUES ('all', NEW.amount) ON CONFLICT (name) DO UPDATE SET sum = sum + NEW.amount;
            END;
            CREATE TABLE parents (id INTEGER PRIMARY KEY);
            CREATE TABLE children (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parents (id) ON DELETE CASCADE);
            """)
        try app(origin, "BEGIN; INSERT INTO orders VALUES (1, 10); UPDATE orders SET amount = 15 WHERE id = 1; INSERT INTO orders VALUES (2, 5); COMMIT;")
        try app(origin, "INSERT INTO parents VALUES (1), (2); INSERT INTO children VALUES (10, 1), (11, 1), (20, 2);")
        try replicate()
        try app(origin, "DELETE FROM parents WHERE id = 1;")
        try app(replica, "INSERT INTO children VALUES (12, 1);")  // a replica-local child the origin never saw
        try replicate()
        let dump = "SELECT * FROM totals; SELECT id, amount FROM orders ORDER BY id; SELECT id FROM children ORDER BY id;"
        #expect(try app(origin, dump) == "all|15\n1|15\n2|5\n20\n")
        // Replica: the same totals (not counted twice), and child 12 kept: the parent's delete did not cascade.
        #expect(try app(replica, dump) == "all|15\n1|15\n2|5\n12\n20\n")
    }

    /// Under a NOCASE key, an update that changes only the key's case reaches the replica.
    @Test func aKeyCaseChangeUnderNocaseReplicates() throws {
        let (origin, replica, replicate) = try pair("CREATE TABLE users (name TEXT PRIMARY KEY COLLATE NOCASE, email TEXT);")
        try app(origin, "INSERT INTO users VALUES ('alice', 'a@x');")
        try replicate()
        try app(origin, "UPDATE users SET name = 'ALICE' WHERE name = 'alice';")
        try replicate()
        #expect(try app(replica, "SELECT name, email FROM users;") == "ALICE|a@x\n")
    }

    /// A newer write from a node that has not run a migration yet (its event lacks the new column) wins the
    /// whole row: the column takes its default here too, as it has on that node, so the nodes agree.
    @Test func aColumnTheWinningEventLacksTakesItsDefault() throws {
        let path = directory.path + "/d.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT, rating INTEGER DEFAULT 3, note TEXT);")
        let database = try SQLiteDatabase(existingPath: path)
        _ = try ChangeLogInstaller.install(in: database, node: 2)
        let applier = try ChangeApplier(database: SQLiteDatabase(existingPath: path), catalog: TableCatalog.read(database))
        let full = ChangeEvent(
            changeID: 1, table: "books", operation: .upsert, stamp: 10 << 16, writer: 1, columns: ["id", "title", "rating", "note"],
            values: [.integer(1), .text("Dune"), .integer(5), .text("new schema")], keyCount: 1)
        let older = ChangeEvent(
            changeID: 2, table: "books", operation: .upsert, stamp: 20 << 16, writer: 3, columns: ["id", "title"],
            values: [.integer(1), .text("Dune (old schema)")], keyCount: 1)
        _ = try applier.apply([full])
        _ = try applier.apply([older])
        #expect(try app(path, "SELECT title, rating, quote(note) FROM books;") == "Dune (old schema)|3|NULL\n")
    }

    /// DROP COLUMN and RENAME COLUMN run here while other nodes still send the old columns: a dropped column
    /// is left out and a renamed one written under its new name, instead of the change waiting forever.
    @Test func columnsDroppedOrRenamedHereStillApply() throws {
        let path = directory.path + "/m.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT, isbn TEXT, rating INTEGER);")
        let database = try SQLiteDatabase(existingPath: path)
        _ = try ChangeLogInstaller.install(in: database, node: 2)
        // The capturer looks after each statement of the migration.
        try app(path, "ALTER TABLE books DROP COLUMN isbn;")
        _ = try ChangeLogInstaller.install(in: database, node: 2)
        try app(path, "ALTER TABLE books RENAME COLUMN rating TO stars;")
        _ = try ChangeLogInstaller.install(in: database, node: 2)
        let applier = try ChangeApplier(database: SQLiteDatabase(existingPath: path), catalog: TableCatalog.read(database))
        let old = ChangeEvent(
            changeID: 1, table: "books", operation: .upsert, stamp: 10 << 16, writer: 1, columns: ["id", "title", "isbn", "rating"],
            values: [.integer(1), .text("Dune"), .text("978-0441013593"), .integer(5)], keyCount: 1)
        #expect(try applier.apply([old]).applied == 1)
        #expect(try app(path, "SELECT id, title, stars FROM books;") == "1|Dune|5\n")
        // A column never seen here still waits (a migration not run here yet).
        let unknown = ChangeEvent(
            changeID: 2, table: "books", operation: .upsert, stamp: 11 << 16, writer: 1, columns: ["id", "title", "pages"],
            values: [.integer(2), .text("Emma"), .integer(300)], keyCount: 1)
        let error = #expect(throws: ApplyError.self) { try applier.apply([unknown]) }
        #expect(error?.kind == .schemaMissing)
        // A drop and a rename between two looks cannot be told apart: the row applies, the ambiguous column's
        // value is kept aside (never written into another column), visible as a parked message.
        _ = try app(path, "ALTER TABLE books DROP COLUMN title; ALTER TABLE books RENAME COLUMN stars TO score;")
        _ = try ChangeLogInstaller.install(in: database, node: 2)
        let ambiguous = ChangeEvent(
            changeID: 3, table: "books", operation: .upsert, stamp: 12 << 16, writer: 1, columns: ["id", "stars"],
            values: [.integer(3), .integer(4)], keyCount: 1)
        let kept = try applier.apply([ambiguous])
        #expect(kept.applied == 1 && kept.partlyParked.map(\.kind) == [.columnsKeptAside])
        #expect(try app(path, "SELECT id, quote(score) FROM books WHERE id = 3;") == "3|NULL\n")
    }

    /// The capturer noticed a schema change and looked at the columns (no lock needed), then waited for the
    /// write lock to record them while the application dropped the column again: the column is still known
    /// here as dropped, so other nodes' changes that carry it apply without it instead of waiting parked for
    /// good (the workload checker's `column extra does not exist in the local table t0`).
    @Test func aColumnDroppedWhileTheCapturerWaitedForTheLockIsKnownAsDropped() throws {
        let path = directory.path + "/w.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT);")
        let database = try SQLiteDatabase(existingPath: path)
        _ = try ChangeLogInstaller.install(in: database, node: 2)
        try app(path, "ALTER TABLE books ADD COLUMN extra TEXT;")
        let seen = try ColumnHistory.look(in: database)
        try app(path, "ALTER TABLE books DROP COLUMN extra;")
        _ = try ChangeLogInstaller.install(in: database, node: 2, seen: { [seen] })
        #expect(try app(path, "SELECT state FROM __harmonylite___columns WHERE name = 'extra';") == "dropped\n")
        let applier = try ChangeApplier(database: SQLiteDatabase(existingPath: path), catalog: TableCatalog.read(database))
        let carrying = ChangeEvent(
            changeID: 1, table: "books", operation: .upsert, stamp: 10 << 16, writer: 1, columns: ["id", "title", "extra"],
            values: [.integer(1), .text("Dune"), .text("x")], keyCount: 1)
        #expect(try applier.apply([carrying]).applied == 1)
        #expect(try app(path, "SELECT id, title FROM books;") == "1|Dune\n")
    }

    /// Looks are recorded in schema-version order: one taken before a newer one was recorded changes nothing.
    /// (Replayed after it, a look with a column dropped since and without one added since would read as a
    /// rename of the new column to the old one.)
    @Test func aLookOlderThanTheLastRecordedIsIgnored() throws {
        let path = directory.path + "/s.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE books (id INTEGER PRIMARY KEY, x TEXT);")
        let database = try SQLiteDatabase(existingPath: path)
        _ = try ChangeLogInstaller.install(in: database, node: 2)
        let stale = try ColumnHistory.look(in: database)
        try app(path, "ALTER TABLE books DROP COLUMN x;")
        _ = try ChangeLogInstaller.install(in: database, node: 2)
        try app(path, "ALTER TABLE books ADD COLUMN y TEXT;")
        _ = try ChangeLogInstaller.install(in: database, node: 2)
        try database.transaction { () throws(SQLiteError) in
            try ColumnHistory.update(stale, in: database)
        }
        #expect(
            try app(path, "SELECT name, state, quote(renamed_to) FROM __harmonylite___columns WHERE name IN ('x', 'y') ORDER BY name;")
                == "x|dropped|NULL\ny|live|NULL\n")
    }

    /// A batch that fails is rolled back with everything the applier did in it for a new schema: the row-clock
    /// table it created for a table that appeared since. The next batch must not count on it (before, it
    /// used statements prepared against the rolled-back row-clock table).
    @Test func aFailedBatchTakesTheSchemaWorkDoneInItWithIt() throws {
        let replica = directory.path + "/r.db"
        try makeDatabase(replica, "PRAGMA journal_mode=WAL; CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT NOT NULL);")
        let replicaDB = try SQLiteDatabase(existingPath: replica)
        _ = try ChangeLogInstaller.install(in: replicaDB, node: 2)
        let applier = try ChangeApplier(database: replicaDB, catalog: TableCatalog.read(replicaDB))
        // Created while the applier runs, before the capturer looked: no row-clock table yet.
        try app(replica, "CREATE TABLE later (id INTEGER PRIMARY KEY, name TEXT);")
        func later(_ id: Int64, stamp: UInt64) -> ChangeEvent {
            ChangeEvent(
                changeID: Int64(stamp), table: "later", operation: .upsert, stamp: stamp << 16, writer: 1, columns: ["id", "name"],
                values: [.integer(id), .text("row \(id)")], keyCount: 1)
        }
        let refused = ChangeEvent(
            changeID: 9, table: "books", operation: .upsert, stamp: 9 << 16, writer: 1, columns: ["id", "title"],
            values: [.integer(1), .null], keyCount: 1)
        let failed = #expect(throws: ApplyError.self) { try applier.apply([later(1, stamp: 1), refused]) }
        #expect(failed?.kind == .database(19))
        #expect(try applier.apply([later(2, stamp: 2)]).applied == 1)
        #expect(try app(replica, "SELECT id, name FROM later;") == "2|row 2\n")
    }

    /// ALTER TABLE ADD COLUMN on both nodes while the applier runs: rows using the new column arrive whole.
    @Test func aColumnAddedWhileRunningIsApplied() throws {
        let origin = directory.path + "/o.db", replica = directory.path + "/r.db"
        for path in [origin, replica] { try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT);") }
        let originDB = try SQLiteDatabase(existingPath: origin)
        let replicaDB = try SQLiteDatabase(existingPath: replica)
        _ = try ChangeLogInstaller.install(in: replicaDB, node: 2)
        let applier = try ChangeApplier(database: replicaDB, catalog: TableCatalog.read(replicaDB))
        var installation = try ChangeLogInstaller.install(in: originDB, node: 1)
        try app(origin, "INSERT INTO books VALUES (1, 'Dune');")
        _ = try applier.apply(try ChangeReader(database: originDB, installation: installation).pending(after: 0, limit: 100).events)
        try app(origin, "ALTER TABLE books ADD COLUMN rating INTEGER; INSERT INTO books VALUES (2, 'Emma', 5);")
        try app(replica, "ALTER TABLE books ADD COLUMN rating INTEGER;")
        installation = try ChangeLogInstaller.install(in: originDB, node: 1)
        let events = try ChangeReader(database: originDB, installation: installation).pending(after: 1, limit: 100).events
        #expect(events.first?.columns == ["id", "title", "rating"])
        _ = try applier.apply(events)
        #expect(try app(replica, "SELECT id, title, quote(rating) FROM books ORDER BY id;") == "1|Dune|NULL\n2|Emma|5\n")
    }
}

/// UNIQUE values: moved between rows inside one origin transaction (swaps, cycles) they apply; held by two
/// rows written concurrently on different nodes, the later write keeps the value on every node and the
/// other row is held aside in `__harmonylite___conflicts` until the value is free.
@Suite struct UniqueConstraintTests {
    let directory: TemporaryDirectory
    static let schema = "CREATE TABLE seats (id INTEGER PRIMARY KEY, holder TEXT NOT NULL UNIQUE, note TEXT);"

    init() throws { directory = try TemporaryDirectory() }

    func app(_ path: String, _ sql: String) throws -> String {
        let result = try runCommand("/usr/bin/sqlite3", [path, sql])
        guard result.status == 0 else { throw TestFailure("sqlite3: \(result.output)") }
        return result.output
    }

    func node(_ name: String, _ id: UInt64, _ rows: String = "") throws -> (path: String, db: SQLiteDatabase, installation: ChangeLogInstallation) {
        let path = directory.path + "/\(name).db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL;" + Self.schema + rows)
        let db = try SQLiteDatabase(existingPath: path)
        return (path, db, try ChangeLogInstaller.install(in: db, node: id))
    }

    func published(_ node: (path: String, db: SQLiteDatabase, installation: ChangeLogInstallation), after: Int64 = 0) throws -> [ChangeEvent] {
        try ChangeReader(database: node.db, installation: node.installation).pending(after: after, limit: 1000).events
    }

    @Test func swapsAndCyclesInsideOneTransactionApply() throws {
        let rows = "INSERT INTO seats VALUES (1, 'ann', ''), (2, 'bob', ''), (3, 'cy', '');"
        let origin = try node("origin", 1, rows), replica = try node("replica", 2, rows)
        try app(
            origin.path,
            """
            BEGIN;
            UPDATE seats SET holder = 'tmp' WHERE id = 1; UPDATE seats SET holder = 'ann' WHERE id = 2; UPDATE seats SET holder = 'bob' WHERE id = 1;
            COMMIT;
            BEGIN;
            UPDATE seats SET holder = 'tmp' WHERE id = 1; UPDATE seats SET holder = 'bob' WHERE id = 2;
            UPDATE seats SET holder = 'ann' WHERE id = 3; UPDATE seats SET holder = 'cy' WHERE id = 1;
            COMMIT;
            """)
        let applier = try ChangeApplier(database: SQLiteDatabase(existingPath: replica.path), catalog: replica.installation.catalog)
        let outcome = try applier.apply(published(origin))
        #expect(outcome.conflicts.isEmpty)
        let dump = "SELECT id, holder FROM seats ORDER BY id;"
        #expect(try app(replica.path, dump) == app(origin.path, dump))
        #expect(try app(replica.path, dump) == "1|cy\n2|bob\n3|ann\n")
        #expect(try app(replica.path, "SELECT count(*) FROM __harmonylite___conflicts;") == "0\n")
    }

    /// Node 1 and node 2 each give 'vip' to a different row; node 2 writes later. Whatever the order of
    /// arrival, both end with node 2's row holding it, node 1's row removed, and the loser recorded.
    @Test func concurrentHoldersOfOneValueConvergeOnTheLaterWrite() throws {
        let one = try node("one", 1), two = try node("two", 2)
        try app(one.path, "INSERT INTO seats VALUES (10, 'vip', 'from one');")
        Thread.sleep(forTimeInterval: 0.01)
        try app(two.path, "INSERT INTO seats VALUES (20, 'vip', 'from two');")
        let fromOne = try published(one), fromTwo = try published(two)
        let atOne = try ChangeApplier(database: SQLiteDatabase(existingPath: one.path), catalog: one.installation.catalog).apply(fromTwo)
        let atTwo = try ChangeApplier(database: SQLiteDatabase(existingPath: two.path), catalog: two.installation.catalog).apply(fromOne)
        // Both hold row 10 aside (its version is the earlier), naming row 20 as the holder of its value.
        for outcome in [atOne, atTwo] {
            #expect(outcome.conflicts.map { [$0.heldAsideKey, $0.holderKey, $0.columns] } == [["10", "20", "holder"]])
        }
        let dump = "SELECT id, holder, note FROM seats ORDER BY id;"
        #expect(try app(one.path, dump) == "20|vip|from two\n")
        #expect(try app(two.path, dump) == "20|vip|from two\n")
        for path in [one.path, two.path] {
            #expect(
                try app(path, "SELECT table_name, columns, losing_key, losing_values, winning_key FROM __harmonylite___conflicts;")
                    == "seats|holder|10|id=10, holder='vip', note='from one'|20\n")
        }
        // Later writes on node one move the value back; they apply on node two in one batch.
        let before = try PublishWatermark.lastQueuedID(in: one.db)
        try app(one.path, "BEGIN; UPDATE seats SET holder = 'vip2' WHERE id = 20; INSERT INTO seats VALUES (10, 'vip', 'one again'); COMMIT;")
        let again = try published(one, after: before)
        _ = try ChangeApplier(database: SQLiteDatabase(existingPath: two.path), catalog: two.installation.catalog).apply(again)
        #expect(try app(two.path, dump) == app(one.path, dump))
        #expect(try app(two.path, dump) == "10|vip|one again\n20|vip2|from two\n")
    }
}

/// Writes the row clocks of local writes not stamped yet, as the capturer's watermark or the applier's
/// next batch would (`PendingStamps`).
func stampPending(_ path: String) throws {
    let database = try SQLiteDatabase(existingPath: path)
    _ = try database.transaction { () throws(SQLiteError) -> Int in try StampMaterializer(database: database).materialize() }
}

@Suite struct FuzzSeqMap {
    @Test func outOfRangeSequencesAreRefused() {
        #expect(throws: CBORMap.Failure.self) { try CBORMap.decode(CBORMap.encode(["hl-1": .max])) }
        #expect(try! CBORMap.decode(CBORMap.encode(["hl-1": UInt64(Int64.max)])) == ["hl-1": UInt64(Int64.max)])
    }

    @Test func fuzzSeqMapDecoder() {
        let seeds = [CBORMap.encode(["hl-1": 10, "hl-2": 70_000, "hl-3": 5_000_000_000]), CBORMap.encode([:]), CBORMap.encode(["x": 1])]
        let report = Fuzzer.run("seq map (CBOR)", seeds: seeds) { (try? CBORMap.decode($0)) != nil }
        #expect(report.accepted > 0 && report.refused > 0)
    }
}
