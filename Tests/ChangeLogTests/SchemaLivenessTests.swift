import Foundation
import TestSupport
import Testing

@testable import ChangeEvents
@testable import ChangeLog
@testable import SQLiteKit

/// What the application does to its schema and keys never wedges capture: real files, the application is the
/// sqlite3 shell, HarmonyLite's side the library the capturer uses.
@Suite struct SchemaLivenessTests: InstalledDatabaseFixture {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    /// `INTEGER PRIMARY KEY DESC` is no rowid alias (SQLite gives it an index of its own): its key is
    /// nullable, a NULL-key write is not queued, and the application's write succeeds.
    @Test func integerPrimaryKeyDescIsNotTheRowid() throws {
        let (path, db, installation) = try installed(
            """
            CREATE TABLE d (id INTEGER PRIMARY KEY DESC, v TEXT);
            CREATE TABLE r (id INTEGER PRIMARY KEY, v TEXT);
            CREATE TABLE a (id INTEGER PRIMARY KEY ASC, v TEXT);
            """)
        let d = try #require(installation.catalog.table(named: "d"))
        #expect(d.keyIndexed && d.nullableKeyColumns.map(\.name) == ["id"])
        #expect(installation.catalog.table(named: "r")?.nullableKeyColumns.isEmpty == true)
        #expect(installation.catalog.table(named: "a")?.nullableKeyColumns.isEmpty == true)
        #expect(installation.notes.contains { $0.hasPrefix("d: rows whose key (id) is NULL are not replicated") }, "\(installation.notes)")
        try app(path, "INSERT INTO d VALUES (NULL, 'no key'); INSERT INTO d VALUES (7, 'seven');")
        #expect(try app(path, "SELECT count(*) FROM d;") == "2\n")
        try materialize(db)
        let events = try ChangeReader(database: db, installation: installation).pending(after: 0, limit: 10).events
        #expect(events.map(\.key) == [[.integer(7)]])
    }

    /// An entry with a NULL key already in the queue (queued by a version whose triggers took `INTEGER
    /// PRIMARY KEY DESC` for the rowid) is passed over: stamping (the watermark's and cursor's transactions)
    /// and reading go on. Before, every stamping failed on `NOT NULL constraint failed`.
    @Test func aQueuedNullKeyWedgesNothing() throws {
        let (path, db, installation) = try installed("CREATE TABLE d (id INTEGER PRIMARY KEY DESC, v TEXT);")
        let id = try #require(installation.tableIDs["d"])
        try app(
            path,
            """
            INSERT INTO d VALUES (NULL, 'no key');
            INSERT INTO __harmonylite___change_log_global (table_id, at, k1) VALUES (\(id), 1000, NULL);
            INSERT INTO d VALUES (7, 'seven');
            """)
        try materialize(db)
        #expect(try db.scalarInteger("SELECT count(*) FROM __harmonylite__d_change_log") == 1)
        let read = try ChangeReader(database: db, installation: installation).pending(after: 0, limit: 10)
        #expect(read.events.map(\.key) == [[.integer(7)]])
        #expect(read.throughID == 2)
    }

    /// `INSERT …; ALTER TABLE kv RENAME COLUMN key TO kk;` in one script: the entry queued before the rename
    /// is stamped into the row clocks (still under the old name), the installation renames their key, and
    /// the row is read under the new name. Before, the installation failed with `no column named kk`.
    @Test func aWriteThenAKeyRenameInOneScriptInstallsAndIsRead() throws {
        let (path, db, _) = try installed("CREATE TABLE kv (key TEXT PRIMARY KEY, v TEXT);")
        try app(path, "INSERT INTO kv VALUES ('b', '2'); ALTER TABLE kv RENAME COLUMN key TO kk;")
        let installation = try ChangeLogInstaller.install(in: db, node: 1)
        #expect(installation.notes.contains { $0.contains("the key of kv was renamed (key → kk)") }, "\(installation.notes)")
        #expect(try db.rows("SELECT name FROM pragma_table_info('__harmonylite__kv_change_log') WHERE pk > 0") == [["kk"]])
        let events = try ChangeReader(database: db, installation: installation).pending(after: 0, limit: 10).events
        #expect(events.map(\.columns) == [["kk", "v"]])
        #expect(events.map(\.values) == [[.text(Array("b".utf8)), .text(Array("2".utf8))]])
        // Later writes are captured under the new name too.
        try app(path, "INSERT INTO kv VALUES ('c', '3');")
        try materialize(db)
        #expect(try db.scalarInteger("SELECT count(*) FROM __harmonylite__kv_change_log") == 2)
    }

    /// `DROP TABLE t; CREATE TABLE t (…); INSERT …` with keys the old table had: the new table's rows are all
    /// captured at the installation (the old row clocks survived the drop). Before, keys with a clock were
    /// skipped and never published.
    @Test func aTableDroppedAndCreatedAgainIsCapturedWhole() throws {
        let (path, db, _) = try installed("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
        try app(path, "INSERT INTO t VALUES (1, 'old'), (2, 'old');")
        try materialize(db)
        let before = try PublishWatermark.lastQueuedID(in: db)
        try app(path, "DROP TABLE t; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'new'), (3, 'new');")
        let installation = try ChangeLogInstaller.install(in: db, node: 1)
        let events = try ChangeReader(database: db, installation: installation).pending(after: before, limit: 10).events
        #expect(events.map(\.key).sorted { "\($0)" < "\($1)" } == [[.integer(1)], [.integer(3)]])
        #expect(events.allSatisfy { $0.values.last == .text(Array("new".utf8)) })
    }

    /// A table renamed onto a new name keeps its rows' clocks: its rows are not captured again.
    @Test func aRenamedTableIsNotCapturedAgain() throws {
        let (path, db, _) = try installed("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
        try app(path, "INSERT INTO t VALUES (1, 'x');")
        try materialize(db)
        let before = try PublishWatermark.lastQueuedID(in: db)
        try app(path, "ALTER TABLE t RENAME TO u;")
        _ = try ChangeLogInstaller.install(in: db, node: 1)
        #expect(try PublishWatermark.lastQueuedID(in: db) == before)
    }

    /// Writes queued before `ALTER TABLE … RENAME TO` and stamped by another process (the applier) before the
    /// capturer installs again are published as what they are, with the stamps their row clocks hold. Before,
    /// the materializer took the entries' table for dropped (its registered name was no table any more) and
    /// moved the mark past them without writing their clocks: the reader then published the rows' earlier
    /// versions again (row 1 here: its delete, so the row stayed on its writer alone; row 2: its first value).
    @Test func writesStampedBetweenATableRenameAndTheInstallationArePublished() throws {
        let (path, db, _) = try installed("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
        try app(path, "INSERT INTO t VALUES (1, 'gone'), (2, 'first');")
        try materialize(db)
        try app(path, "DELETE FROM t WHERE id = 1;")
        try materialize(db)
        let before = try PublishWatermark.lastQueuedID(in: db)
        let deleted = try db.scalarInteger("SELECT __harmonylite__hlc FROM __harmonylite__t_change_log WHERE id = 1")
        try app(path, "INSERT INTO t VALUES (1, 'back'); UPDATE t SET v = 'second' WHERE id = 2; ALTER TABLE t RENAME TO u;")
        try materialize(db)
        let installation = try ChangeLogInstaller.install(in: db, node: 1)
        let events = try ChangeReader(database: db, installation: installation).pending(after: before, limit: 10).events
        #expect(events.map(\.table) == ["u", "u"])
        #expect(events.map(\.operation) == [.upsert, .upsert])
        #expect(events.map(\.values) == [[.integer(1), .text(Array("back".utf8))], [.integer(2), .text(Array("second".utf8))]])
        let clocks = try db.rows("SELECT __harmonylite__hlc FROM __harmonylite__u_change_log ORDER BY id").map { UInt64($0[0] ?? "") }
        #expect(events.map(\.stamp) == clocks.compactMap { $0 })
        #expect(events.first.map { $0.stamp > UInt64(bitPattern: deleted) } == true)
    }

    /// In that window the applier may have clocked rows under the new name already (changes of a node that
    /// renamed first): a local write's stamp then follows the later of the row's two clocks, as the
    /// installation's merge keeps the later one, so the write is published above both.
    @Test func aWriteBetweenARenameAndTheInstallationFollowsTheRowsLaterClock() throws {
        let (path, db, _) = try installed("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
        try app(path, "INSERT INTO t VALUES (2, 'first');")
        try materialize(db)
        let before = try PublishWatermark.lastQueuedID(in: db)
        try app(path, "UPDATE t SET v = 'second' WHERE id = 2; ALTER TABLE t RENAME TO u;")
        let remote = UInt64(bitPattern: try db.scalarInteger("SELECT __harmonylite__hlc FROM __harmonylite__t_change_log WHERE id = 2")) + (1 << 40)
        let renamed = try #require(try TableCatalog.read(db).table(named: "u"))
        try db.execute(ChangeLogSchema.changeLogTable(renamed))
        try db.prepare("INSERT INTO __harmonylite__u_change_log VALUES (2, ?, 9, 0)").run([.integer(Int64(bitPattern: remote))])
        try materialize(db)
        let installation = try ChangeLogInstaller.install(in: db, node: 1)
        let events = try ChangeReader(database: db, installation: installation).pending(after: before, limit: 10).events
        #expect(events.map(\.values) == [[.integer(2), .text(Array("second".utf8))]])
        #expect(events.map(\.writer) == [1])
        #expect(events.first.map { $0.stamp > remote } == true)
    }

    /// The capturer's watermark after the application renamed a table its reader had read: the reader's
    /// stamps name the old table and are not reused (they failed the watermark's transaction: "no such
    /// table"); the entries are stamped from the queue into the old name's row clocks, as published.
    @Test func aReadersStampsFromBeforeATableRenameAreNotReusedAfterIt() throws {
        let (path, db, installation) = try installed("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
        try app(path, "INSERT INTO t VALUES (1, 'x');")
        let reader = try ChangeReader(database: db, installation: installation)
        let read = try reader.pending(after: 0, limit: 10)
        try app(path, "ALTER TABLE t RENAME TO u;")
        let materializer = StampMaterializer(database: db)
        _ = try db.transaction { () throws(SQLiteError) -> Int in try materializer.materialize(known: reader.stamps, onlyKnown: true) }
        #expect(
            read.events.map(\.stamp) == [UInt64(bitPattern: try db.scalarInteger("SELECT __harmonylite__hlc FROM __harmonylite__t_change_log WHERE id = 1"))])
        #expect(try PendingStamps.stampedThrough(in: db) == read.throughID)
    }

    /// An `ADD COLUMN` and an `UPDATE` of the new column that commit after the reader was made (between the
    /// capturer's schema check and its read) are never read with the old columns: the reader says the
    /// schema changed and reads nothing, so the capturer installs again and reads the new column's value.
    @Test func aSchemaChangeBeforeTheReadIsNeverReadWithTheOldColumns() throws {
        let (path, db, installation) = try installed("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
        let reader = try ChangeReader(database: db, installation: installation)
        try app(path, "INSERT INTO t VALUES (1, 'x'); ALTER TABLE t ADD COLUMN c TEXT; UPDATE t SET c = 'new column' WHERE id = 1;")
        let read = try reader.pending(after: 0, limit: 10, schemaVersion: installation.schemaVersion)
        #expect(read.schemaChanged && read.events.isEmpty && read.throughID == nil)
        // Read without the check, the update comes with the old columns only: the new value would be lost.
        let unchecked = try reader.pending(after: 0, limit: 10).events
        #expect(unchecked.map(\.columns) == [["id", "v"]])
        let again = try ChangeLogInstaller.install(in: db, node: 1)
        let events = try ChangeReader(database: db, installation: again).pending(after: 0, limit: 10).events
        #expect(events.map(\.columns) == [["id", "v", "c"]])
        #expect(events.first?.values.last == .text(Array("new column".utf8)))
    }

    /// An installation that fails leaves the database as it was (one transaction) and its message says what
    /// to do. Here the queue's name is taken by a view the installation cannot alter.
    @Test func aFailedInstallationLeavesTheDatabaseAsItWasAndSaysWhatToDo() throws {
        let path = directory.path + "/f.db"
        try makeDatabase(
            path,
            """
            PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
            CREATE VIEW __harmonylite___change_log_global AS SELECT 1 AS id, 1 AS table_id;
            """)
        let before = try app(path, "SELECT type, name FROM sqlite_schema ORDER BY name;")
        do {
            _ = try ChangeLogInstaller.open(path, node: 1)
            Issue.record("the installation did not fail")
        } catch {
            let message = ChangeLogInstaller.cannotStart(error, path: path)
            #expect(message.hasPrefix("cannot install the change log in \(path): "), "\(message)")
            #expect(message.contains("the database was left as it was") && message.contains("-cleanup"), "\(message)")
        }
        #expect(try app(path, "SELECT type, name FROM sqlite_schema ORDER BY name;") == before)
        #expect(ChangeLogInstaller.cannotStart(SQLiteError(code: 13, message: "database or disk is full"), path: path).contains("free space"))
        #expect(ChangeLogInstaller.cannotStart(SQLiteError(code: 8 | (1 << 8), message: "readonly"), path: path).contains("write access"))
    }
}
