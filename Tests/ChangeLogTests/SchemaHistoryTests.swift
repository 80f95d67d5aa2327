import ChangeEvents
import SQLiteKit
import TestSupport
import Testing

@testable import ChangeLog

/// `ColumnHistory` on real SQLite files migrated by the sqlite3 shell: a rename is recorded only when SQLite's
/// own record (the CREATE text, the schema cookie) allows no other history, and renamed tables and key columns
/// carry other nodes' changes under either name.
@Suite struct SchemaHistoryTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    @discardableResult
    func app(_ path: String, _ sql: String) throws -> String {
        let result = try runCommand("/usr/bin/sqlite3", [path, "PRAGMA trusted_schema=OFF;" + sql])
        guard result.status == 0 else { throw TestFailure("sqlite3: \(result.output)") }
        return result.output
    }

    /// A node's database with `schema`, installed; `reopen` installs again on a new connection (a restart).
    func node(_ name: String, _ schema: String) throws -> (path: String, reopen: () throws -> SQLiteDatabase) {
        let path = directory.path + "/\(name).db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL;" + schema)
        _ = try ChangeLogInstaller.open(path, node: 2)
        return (path, { try ChangeLogInstaller.open(path, node: 2).0 })
    }

    func state(_ path: String, _ table: String, _ column: String) throws -> String {
        try app(path, "SELECT state || ':' || ifnull(renamed_to, '') FROM __harmonylite___columns WHERE table_name = '\(table)' AND name = '\(column)';")
    }

    func upsert(_ table: String, _ columns: [String], _ values: [SQLiteValue], stamp: UInt64 = 10) -> ChangeEvent {
        ChangeEvent(changeID: 1, table: table, operation: .upsert, stamp: stamp << 16, writer: 1, columns: columns, values: values, keyCount: 1)
    }

    func applier(_ database: SQLiteDatabase) throws -> ChangeApplier {
        try ChangeApplier(database: database, catalog: TableCatalog.read(database))
    }

    static let profiles = "CREATE TABLE profiles (id INTEGER PRIMARY KEY, name TEXT, secret TEXT);"

    /// The issue's case: DROP COLUMN secret; ADD COLUMN color TEXT on a stopped node. SQLite's text is then
    /// exactly what RENAME COLUMN secret TO color writes, but the cookie moved by two: no rename is recorded,
    /// and a change still carrying secret applies without it, its value kept aside rather than fill color.
    @Test func dropThenAddOnAStoppedNodeIsNoRename() throws {
        let (path, reopen) = try node("drop-add", Self.profiles)
        try app(path, "ALTER TABLE profiles DROP COLUMN secret; ALTER TABLE profiles ADD COLUMN color TEXT;")
        let database = try reopen()
        #expect(try state(path, "profiles", "secret") == "unknown:\n")
        // The row applies without secret's value, which is kept aside (parked, shown, never retried into a column).
        let outcome = try applier(database).apply([upsert("profiles", ["id", "name", "secret"], [.integer(7), .text("eve"), .text("hunter2")])])
        #expect(outcome.applied == 1)
        #expect(outcome.partlyParked.map(\.stream) == ["profiles(secret) kept aside"])
        #expect(try app(path, "SELECT id, name, quote(color) FROM profiles;") == "7|eve|NULL\n")
        #expect(try ParkedMessages.all(in: database).map(\.kind) == [.columnsKeptAside])
        #expect(try app(path, "SELECT count(*) FROM profiles WHERE color = 'hunter2';") == "0\n")
        // The same text from one RENAME COLUMN is a rename (the cookie moved by one).
        let (renamed, reopenRenamed) = try node("rename", Self.profiles)
        try app(renamed, "ALTER TABLE profiles RENAME COLUMN secret TO color;")
        #expect(
            try app(renamed, "SELECT sql FROM sqlite_schema WHERE name = 'profiles';")
                == "CREATE TABLE profiles (id INTEGER PRIMARY KEY, name TEXT, color TEXT)\n")
        #expect(
            try app(path, "SELECT sql FROM sqlite_schema WHERE name = 'profiles';") == "CREATE TABLE profiles (id INTEGER PRIMARY KEY, name TEXT, color TEXT)\n"
        )
        let renamedDatabase = try reopenRenamed()
        #expect(try state(renamed, "profiles", "secret") == "renamed:color\n")
        #expect(
            try applier(renamedDatabase).apply([upsert("profiles", ["id", "name", "secret"], [.integer(7), .text("eve"), .text("hunter2")])]).applied == 1)
        #expect(try app(renamed, "SELECT id, name, color FROM profiles;") == "7|eve|hunter2\n")
    }

    /// DROP COLUMN + ADD COLUMN on a stopped node where the added column has another type (`secret BLOB` gone,
    /// `color TEXT` added): the texts differ only in "names" (`secret`→`color`, `BLOB`→`TEXT`), but no column
    /// now could be `secret` renamed (no RENAME COLUMN changes a type), so the drop is certain and a change
    /// still carrying `secret` applies without it. (Found by the workload checker's `dropAndAdd`: the fate was
    /// `unknown`, and the not-yet-migrated nodes' rows stayed parked on the migrated node for good.)
    @Test func dropThenAddOfAnotherTypeOnAStoppedNodeIsACertainDrop() throws {
        let (path, reopen) = try node("drop-add-blob", "CREATE TABLE profiles (id INTEGER PRIMARY KEY, name TEXT, secret BLOB);")
        try app(path, "ALTER TABLE profiles DROP COLUMN secret; ALTER TABLE profiles ADD COLUMN color TEXT;")
        let database = try reopen()
        #expect(try state(path, "profiles", "secret") == "dropped:\n")
        #expect(try applier(database).apply([upsert("profiles", ["id", "name", "secret"], [.integer(7), .text("eve"), .text("hunter2")])]).applied == 1)
        #expect(try app(path, "SELECT id, name, quote(color) FROM profiles;") == "7|eve|NULL\n")
    }

    /// A drop of a column no other column could have become (another definition, or another place) is
    /// certain over several statements; one that another column could be the rename of is not.
    @Test func aDropAmongSeveralStatementsIsCertainOnlyWhenNoColumnCouldBeItsRename() throws {
        let (path, reopen) = try node("drops", "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, n INTEGER NOT NULL DEFAULT 0, b TEXT, c TEXT);")
        try app(path, "ALTER TABLE t DROP COLUMN n; CREATE INDEX t_a ON t(a); ALTER TABLE t DROP COLUMN c;")
        let database = try reopen()
        #expect(try state(path, "t", "n") == "dropped:\n")
        // c TEXT: b TEXT could be c renamed after b was dropped (the same text): unknown.
        #expect(try state(path, "t", "c") == "unknown:\n")
        #expect(try applier(database).apply([upsert("t", ["id", "a", "n"], [.integer(1), .text("x"), .integer(3)])]).applied == 1)
        #expect(try app(path, "SELECT id, a, b FROM t;") == "1|x|\n")
    }

    /// A key column can be neither dropped nor added, so its rename is certain even with other statements in
    /// the same migration. Changes under the old key name apply, and the row clocks keep their stamps (an
    /// older change still loses to the row's newer version).
    @Test func aKeyColumnRenameAmongOtherChangesCarriesOldNamedChanges() throws {
        let (path, reopen) = try node("key", "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT);")
        var database = try reopen()
        #expect(try applier(database).apply([upsert("kv", ["k", "v"], [.text("x"), .text("newest")], stamp: 50)]).applied == 1)
        try app(path, "ALTER TABLE kv RENAME COLUMN k TO key; CREATE INDEX kv_v ON kv(v);")
        database = try reopen()
        #expect(
            try state(path, "kv", "k") == "renamed:key\n",
            "\((try? app(path, "SELECT * FROM __harmonylite___columns; SELECT * FROM __harmonylite___table_texts; SELECT * FROM __harmonylite___meta;")) ?? "")"
        )
        #expect(try app(path, "SELECT group_concat(name) FROM pragma_table_info('__harmonylite__kv_change_log') WHERE pk > 0;") == "key\n")
        let outcome = try applier(database).apply([
            upsert("kv", ["k", "v"], [.text("a"), .text("old name")]),
            upsert("kv", ["k", "v"], [.text("x"), .text("older")], stamp: 20),
        ])
        #expect(outcome.applied == 1 && outcome.superseded == 1)
        #expect(try app(path, "SELECT key, v FROM kv ORDER BY key;") == "a|old name\nx|newest\n")
    }

    /// A write and a key rename in one script: the write's stamp is still pending when the installer runs,
    /// and lands in the row clock under the new key name (the row clock's column is renamed first).
    @Test func aWriteAndAKeyRenameInOneScriptInstall() throws {
        let (path, reopen) = try node("write-rename", "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT);")
        try app(path, "INSERT INTO kv VALUES ('b', '2'); ALTER TABLE kv RENAME COLUMN k TO kk;")
        _ = try reopen()
        #expect(try state(path, "kv", "k") == "renamed:kk\n")
        #expect(try app(path, "SELECT kk, __harmonylite__node FROM __harmonylite__kv_change_log;") == "b|2\n")
    }

    /// A node that has not renamed the key yet refuses changes under the new name (they wait parked); once it
    /// runs the same migration they apply.
    @Test func aNodeNotMigratedYetTakesNewNamedChangesAfterItsMigration() throws {
        let (path, reopen) = try node("late", "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT); CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT);")
        var database = try reopen()
        let newKey = upsert("kv", ["key", "v"], [.text("b"), .text("new name")])
        let newTable = upsert("customers", ["id", "name"], [.integer(3), .text("new table name")])
        let keyError = #expect(throws: ApplyError.self) { try applier(database).apply([newKey]) }
        #expect(keyError?.kind == .keyMismatch)
        let tableError = #expect(throws: ApplyError.self) { try applier(database).apply([newTable]) }
        #expect(tableError?.kind == .schemaMissing)
        try app(path, "ALTER TABLE kv RENAME COLUMN k TO key; ALTER TABLE customer RENAME TO customers;")
        database = try reopen()
        #expect(try applier(database).apply([newKey, newTable]).applied == 2)
        #expect(try app(path, "SELECT key, v FROM kv; SELECT id, name FROM customers;") == "b|new name\n3|new table name\n")
    }

    /// ALTER TABLE RENAME (the triggers follow the table: certain), twice: changes naming the first name apply
    /// to the table under its last name, its renamed columns included.
    @Test func aRenamedTableTakesChangesUnderItsOldNames() throws {
        let (path, reopen) = try node("table", "CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT);")
        try app(path, "ALTER TABLE customer RENAME TO customers;")
        _ = try reopen()
        try app(path, "ALTER TABLE customers RENAME TO clients; ALTER TABLE clients RENAME COLUMN name TO full_name;")
        let database = try reopen()
        #expect(
            try app(path, "SELECT name || '>' || renamed_to FROM __harmonylite___renamed_tables ORDER BY name;") == "customer>customers\ncustomers>clients\n")
        // Two statements, but the one edit of names in place is RENAME COLUMN's... over two statements a
        // DROP and an ADD could have written it: name's fate is unknown, and its changes wait.
        #expect(try state(path, "clients", "name") == "unknown:\n")
        #expect(try applier(database).apply([upsert("customer", ["id"], [.integer(1)])]).applied == 1)
        #expect(try app(path, "SELECT id FROM clients;") == "1\n")
    }

    /// The node's own changes come back from the stream after it renamed their table (and the installer
    /// renamed the row clocks with it): the applier reads them under the new name. Before, its cached
    /// statement still named the old row-clock table, and every delivery failed with `no such table` for good.
    @Test func ownChangesComingBackAfterATableRenameAreRecognized() throws {
        let (path, reopen) = try node("own", "CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT);")
        let database = try reopen()
        let applier = try applier(database)
        try app(path, "INSERT INTO customer VALUES (1, 'mine');")
        _ = try reopen()  // stamps the write
        let stamp = try app(path, "SELECT __harmonylite__hlc FROM __harmonylite__customer_change_log;")
        let own = ChangeEvent(
            changeID: 1, table: "customer", operation: .upsert, stamp: UInt64(stamp.dropLast())!, writer: 2,
            columns: ["id", "name"], values: [.integer(1), .text("mine")], keyCount: 1)
        #expect(try applier.notYetHeld([own]).isEmpty)
        try app(path, "ALTER TABLE customer RENAME TO customers;")
        _ = try reopen()
        #expect(try applier.notYetHeld([own]).isEmpty)
        #expect(try applier.apply([own]).superseded == 1)
    }

    /// A live RENAME TO, and changes under the new name (from a node that renamed first) before the
    /// capturer's installation adopts the rename: they wait parked (the renamed table's clocks are still under
    /// the old name, and a comparison with none let an older version overwrite a later local one: the
    /// review's N3), and apply once the installation has moved the clocks; the old clocks are kept, and the
    /// queue's waiting changes too.
    @Test func changesUnderANewNameBeforeTheAdoptionWaitForIt() throws {
        let (path, reopen) = try node("merge", "CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT);")
        var database = try reopen()
        #expect(
            try applier(database).apply([
                upsert("customer", ["id", "name"], [.integer(1), .text("newest")], stamp: 50),
                upsert("customer", ["id", "name"], [.integer(2), .text("old")], stamp: 5),
            ]).applied == 2)
        try app(path, "ALTER TABLE customer RENAME TO customers; INSERT INTO customers VALUES (4, 'local, waiting');")
        // The applier first (its own connection; no installation since the rename).
        let early = try SQLiteDatabase(existingPath: path)
        let changes = [
            upsert("customers", ["id", "name"], [.integer(2), .text("newer")], stamp: 20),
            upsert("customers", ["id", "name"], [.integer(3), .text("new name")], stamp: 20),
        ]
        let source = ChangeApplier.EventSource(stream: "s", sequence: 1, origin: 1, schemaHash: "")
        let waiting = try applier(early).apply(changes, sources: [source, source])
        #expect(waiting.applied == 0 && waiting.partlyParked.count == 1)
        database = try reopen()
        #expect(try applier(database).apply(changes).applied == 2)
        #expect(try app(path, "SELECT count(*) FROM sqlite_master WHERE name = '__harmonylite__customer_change_log';") == "0\n")
        #expect(try app(path, "SELECT id, __harmonylite__hlc >> 16 FROM __harmonylite__customers_change_log WHERE id < 4 ORDER BY id;") == "1|50\n2|20\n3|20\n")
        // The clock kept: an older change of row 1 loses.
        #expect(try applier(database).apply([upsert("customer", ["id", "name"], [.integer(1), .text("older")], stamp: 30)]).superseded == 1)
        // The local write made before the installation is still queued under the table's id.
        let installation = try ChangeLogInstaller.install(in: database, node: 2)
        let pending = try ChangeReader(database: database, installation: installation).pending(after: 0, limit: 100)
        #expect(pending.events.contains { $0.table == "customers" && $0.key.first == .integer(4) }, "\(pending.events)")
    }

    /// The capturer's looks while running, one per statement: each rename is certain, and SQLite's quoting
    /// of the new name (a keyword) changes nothing.
    @Test func looksAfterEachStatementRecordEachRename() throws {
        let (path, _) = try node("live", Self.profiles)
        let database = try SQLiteDatabase(existingPath: path)
        try app(path, "ALTER TABLE profiles RENAME COLUMN name TO \"select\";")
        _ = try ChangeLogInstaller.install(in: database, node: 2)
        try app(path, "ALTER TABLE profiles DROP COLUMN secret;")
        _ = try ChangeLogInstaller.install(in: database, node: 2)
        try app(path, "ALTER TABLE profiles ADD COLUMN secret TEXT;")
        _ = try ChangeLogInstaller.install(in: database, node: 2)
        #expect(
            try app(path, "SELECT sql FROM sqlite_schema WHERE name = 'profiles';")
                == "CREATE TABLE profiles (id INTEGER PRIMARY KEY, \"select\" TEXT, secret TEXT)\n")
        #expect(try state(path, "profiles", "name") == "renamed:select\n")
        #expect(try state(path, "profiles", "secret") == "live:\n")
    }
}

/// The reading of SQLite's CREATE text that `ColumnHistory` relies on.
@Suite struct CreateTableTextTests {
    @Test func renamesAreSubstitutionsOfNamesAndKeyColumnsAreFixed() {
        let before = CreateTableText("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT, \"odd \"\"name\" INT CHECK (v <> ''), UNIQUE (v))")
        let after = CreateTableText("CREATE TABLE kv (key TEXT PRIMARY KEY, v TEXT, [Odd \"Name] INT CHECK (v <> ''), UNIQUE (v))")
        #expect(before.substitutions(to: after) == ["k": "key"])
        #expect(before.elements.map(\.column) == ["k", "v", "odd \"name", nil])
        #expect(before.isFixed("k", renamedTo: "key", in: after))
        // v is named by UNIQUE (v) and a CHECK: fixed when those occurrences were renamed with it.
        let vRenamed = CreateTableText("CREATE TABLE kv (k TEXT PRIMARY KEY, w TEXT, \"odd \"\"name\" INT CHECK (w <> ''), UNIQUE (w))")
        #expect(before.isFixed("v", renamedTo: "w", in: vRenamed))
        #expect(!before.isFixed("odd \"name", renamedTo: "odd \"name", in: after))
        // A name spelled by another table's column (REFERENCES p(id)) that stayed is not a use of the column.
        let child = CreateTableText("CREATE TABLE c (id INTEGER, pid INTEGER REFERENCES p(id))")
        let renamedChild = CreateTableText("CREATE TABLE c (ident INTEGER, pid INTEGER REFERENCES p(id))")
        #expect(child.substitutions(to: renamedChild) == ["id": "ident"])
        #expect(!child.isFixed("id", renamedTo: "ident", in: renamedChild))
        // Two names becoming one, or anything else changing: no substitution.
        #expect(CreateTableText("CREATE TABLE t (a, b)").substitutions(to: CreateTableText("CREATE TABLE t (c, c)")) == nil)
        #expect(CreateTableText("CREATE TABLE t (a TEXT, b)").substitutions(to: CreateTableText("CREATE TABLE t (a INT, b)")) == ["text": "int"])
        #expect(CreateTableText("CREATE TABLE t (a, b)").substitutions(to: CreateTableText("CREATE TABLE t (a)")) == nil)
        // Unbalanced or odd text: no elements, nothing fixed, and no crash.
        #expect(CreateTableText("CREATE TABLE t (a, b").elements.isEmpty)
        #expect(!CreateTableText("'unterminated").isFixed("a", renamedTo: "b", in: CreateTableText("'unterminated")))
    }
}
