import COpenSSL
import SQLiteKit

/// What an installation left in the database, for the capturer and the applier.
public struct ChangeLogInstallation: Sendable {
    public var catalog: TableCatalog
    public var tableIDs: [String: Int64]
    /// Random per installation: part of every message id, so ids reused after `-cleanup` never name
    /// another installation's messages (in logs, and in the acknowledgements of the broker's publishes).
    public var incarnation: String
    /// HarmonyLite's schema hash of the replicated tables.
    public var schemaHash: String
    /// Messages about tables whose change log had to be rebuilt (its key changed).
    public var notes: [String]
    /// The database's `schema_version` this installation was made for (read in its transaction, after its
    /// own changes): a different one later means the application changed the schema since.
    public var schemaVersion: Int64 = 0
}

/// Installs (or brings up to date) the change logs and capture triggers: idempotent, in one transaction,
/// so an application writing concurrently sees either none or all of it.
public enum ChangeLogInstaller {
    /// Opens the node's database as both workers need it: WAL (so the application's readers and our
    /// writers do not block each other, as HarmonyLite did too) with the change logs installed.
    ///
    /// Our own commits skip the fsync (`synchronous=NORMAL`, this connection only): each holds the write
    /// lock for microseconds instead of a disk flush, which is what made the application's writes wait in
    /// the benchmark. Nothing depends on them being durable at once: a power cut can only roll back the
    /// last applied batches together with their cursor (fetched again from JetStream) or the publish
    /// watermark (published again: the same stamps supersede nothing where they were applied already).
    ///
    /// - Parameter upstreamSeqMap: the node's `seq_map_path`: read when the database is upstream
    ///   HarmonyLite's, so consumption continues where upstream stopped (`UpstreamTakeover`).
    /// - Parameter whileWaiting: when given, the connection waits for locks other connections hold for as long
    ///   as it answers true, calling it between tries (`SQLiteDatabase.waitWhenBusy`: a worker's heartbeats
    ///   go on); without it, for 5 s at most.
    public static func open(
        _ path: String, node: UInt64, upstreamSeqMap: String? = nil, whileWaiting: (() -> Bool)? = nil
    ) throws(SQLiteError) -> (SQLiteDatabase, ChangeLogInstallation) {
        let database = try SQLiteDatabase(existingPath: path)
        if let whileWaiting { database.waitWhenBusy(timeoutMilliseconds: nil, whileWaiting: whileWaiting) }
        try database.execute("PRAGMA journal_mode=WAL")
        try database.execute("PRAGMA synchronous=NORMAL")
        return (database, try install(in: database, node: node, upstreamSeqMap: upstreamSeqMap))
    }

    /// What a worker that cannot open the database at start says: the cause, that the database was left as it
    /// was (the installation is one transaction, rolled back), and what to do about it. Said once per start;
    /// the same state fails the same way at the next start, so the remedy is in the message.
    public static func cannotStart(_ error: SQLiteError, path: String) -> String {
        // A refused takeover says itself that nothing was written, and what to do.
        if UpstreamTakeover.isRefusal(error) { return "cannot install the change log in \(path): \(error.message)" }
        let remedy: String
        switch error.code & 0xff {
        case 8:  // SQLITE_READONLY
            remedy =
                "the database or its directory is not writable for this user (HarmonyLite writes its tables, the WAL and the -shm file there): give it write access to both"
        case 13:  // SQLITE_FULL
            remedy = "the disk is full: free space on the database's filesystem"
        case 10:  // SQLITE_IOERR
            remedy = "the disk or filesystem failed a read or write: check it (dmesg), then start the node again"
        case 11, 26:  // SQLITE_CORRUPT, SQLITE_NOTADB
            remedy =
                "the file is damaged or not a SQLite database: restore it from a backup (or a snapshot: `harmonylite -config FILE -save-snapshot` on a healthy node, then restore it here)"
        case 14:  // SQLITE_CANTOPEN
            remedy = "the file cannot be opened: check db_path and the permissions of the file and its directory"
        default:
            remedy =
                "it fails the same way at every start while the database stays as it is: if the cause is in HarmonyLite's own tables (`__harmonylite__*`), stop the node and run `harmonylite -config FILE -cleanup` (it removes them; unpublished local changes and row clocks are lost, the other nodes' rows win), then start it again"
        }
        return "cannot install the change log in \(path): \(error). The installation is one transaction: the database was left as it was. To go on: \(remedy)"
    }

    /// - Parameter seen: the columns as looks taken before the write lock was held saw them
    ///   (`ColumnHistory.look`), asked for once it is held and recorded in order before the columns as they
    ///   are now.
    ///
    /// A database upstream HarmonyLite (Go) managed is taken over in the same transaction
    /// (`UpstreamTakeover`); when that cannot finish, nothing is written and the error says what to do.
    public static func install(
        in database: SQLiteDatabase, node: UInt64, upstreamSeqMap: String? = nil, seen: () -> [ColumnHistory.Look] = { [] }
    ) throws(SQLiteError) -> ChangeLogInstallation {
        try database.execute("BEGIN IMMEDIATE")
        do throws(SQLiteError) {
            var installation = try installInTransaction(database, node: node, upstreamSeqMap: upstreamSeqMap, seen: seen)
            installation.schemaVersion = try database.scalarInteger("PRAGMA schema_version")
            try database.execute("COMMIT")
            return installation
        } catch {
            try? database.execute("ROLLBACK")
            throw error
        }
    }

    private static func installInTransaction(
        _ database: SQLiteDatabase, node: UInt64, upstreamSeqMap: String?, seen: () -> [ColumnHistory.Look]
    ) throws(SQLiteError) -> ChangeLogInstallation {
        typealias S = ChangeLogSchema
        // Upstream's objects first, before anything of ours is created or altered: checked, then dropped.
        var takeover: UpstreamTakeover.Plan? = nil
        switch try UpstreamTakeover.plan(database, catalog: try TableCatalog.read(database), seqMapPath: upstreamSeqMap) {
        case nil: break
        case .failure(let refusal)?: throw SQLiteError(code: UpstreamTakeover.refusalCode, message: refusal.description)
        case .success(let plan)?:
            try UpstreamTakeover.dropUpstreamObjects(plan, in: database)
            takeover = plan
        }
        let conflictColumns = try database.prepare("SELECT name FROM pragma_table_info(?)").all([.text(S.conflicts)])
        if conflictColumns.contains(where: { $0.first == .text("id") }) {
            try database.execute("ALTER TABLE \(S.quote(S.conflicts)) RENAME TO \(S.quote(S.settledConflictsLog))")
        }
        for sql in S.fixedTables { try database.execute(sql) }
        // What became of the application's columns and tables since the last look, before any change of ours
        // moves the schema cookie (`ColumnHistory`): the looks taken before the lock, then the one of now.
        for look in seen() { try ColumnHistory.update(look, in: database) }
        try ColumnHistory.update(try ColumnHistory.lookInTransaction(database), in: database)
        let firstInstallation = try database.prepare("SELECT 1 FROM \(S.quote(S.meta)) WHERE key = 'incarnation'").all().isEmpty
        try database.prepare("INSERT OR IGNORE INTO \(S.quote(S.meta)) (key, value) VALUES ('incarnation', ?)").run([.text(randomHex(8))])
        let incarnation = try database.prepare("SELECT value FROM \(S.quote(S.meta)) WHERE key = 'incarnation'").all().first?.first ?? .null
        guard case .text(let incarnationBytes) = incarnation else {
            throw SQLiteError(code: 1, message: "\(S.meta) has no incarnation")
        }

        var catalog = try TableCatalog.read(database)
        let widestKey = catalog.replicated.map { $0.primaryKey.count }.max() ?? 0
        let queueColumns = try database.prepare("SELECT name FROM pragma_table_info(?)").all([.text(S.globalLog)])
        if !queueColumns.contains(where: { $0.first == .text(Array("at".utf8)) }) {
            // An installation from before deferred stamping: its queued entries' row clocks are written.
            try database.execute("ALTER TABLE \(S.quote(S.globalLog)) ADD COLUMN at INTEGER")
            try PendingStamps.setStampedThrough(try PublishWatermark.lastQueuedID(in: database), in: database)
        }
        let keyColumns = queueColumns.count - (queueColumns.contains(where: { $0.first == .text(Array("at".utf8)) }) ? 3 : 2)
        if keyColumns < widestKey {
            for position in (keyColumns + 1)...widestKey {
                try database.execute("ALTER TABLE \(S.quote(S.globalLog)) ADD COLUMN \(S.keyColumn(position))")
            }
        }

        var tableIDs: [String: Int64] = [:]
        var (notes, adopted, replaced) = try adoptRenamedTables(database)
        notes += try renameRowClockKeys(catalog.replicated, database)
        // Row clocks change below (new tables, changed keys): pending stamps first (`PendingStamps`).
        let materializer = StampMaterializer(database: database)
        try materializer.materialize()
        try PendingStamps.setNode(node, in: database)
        let insertName = try database.prepare("INSERT OR IGNORE INTO \(S.quote(S.tables)) (name) VALUES (?)")
        let selectID = try database.prepare("SELECT id FROM \(S.quote(S.tables)) WHERE name = ?")
        let logKey = try database.prepare("SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk")
        let hasTrigger = try database.prepare("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?")
        var failed: [(name: String, reason: String)] = []
        for table in catalog.replicated {
            // One table that cannot be captured (an odd schema, a name SQLite refuses) must not stop the others.
            try database.execute("SAVEPOINT harmonylite_table")
            do throws(SQLiteError) {
                // Registered in any case is known (`DROP TABLE t; CREATE TABLE T` is t dropped and created again).
                let registered = try Self.registeredID(table.name, in: database)
                let known = registered != nil
                if let registered { try Self.claimRegistryName(table.name, for: registered, in: database) } else { try insertName.run([.text(table.name)]) }
                guard case .integer(let id) = try selectID.all([.text(table.name)]).first?.first else { throw SQLiteError(code: 1, message: "no table id") }
                tableIDs[table.name] = id
                let existingKey = try logKey.all([.text(S.changeLog(of: table.name))]).compactMap { row -> String? in
                    if case .text(let bytes) = row.first { return String(decoding: bytes, as: UTF8.self) } else { return nil }
                }
                let key = table.primaryKey.map(\.name)
                let columnNames = Set(table.columns.map(\.name))
                if !existingKey.isEmpty && existingKey != key && existingKey.count == key.count && !existingKey.contains(where: columnNames.contains) {
                    // `RENAME COLUMN` of key columns: the old names are gone, as many new ones took their places.
                    // The row clocks keep their keys (and the entries queued before the rename, stamped into
                    // them by position, are published with them).
                    for (old, new) in zip(existingKey, key) where old != new {
                        try database.execute("ALTER TABLE \(S.quote(S.changeLog(of: table.name))) RENAME COLUMN \(S.quote(old)) TO \(S.quote(new))")
                    }
                    notes.append(
                        "the key of \(table.name) was renamed (\(existingKey.joined(separator: ",")) → \(key.joined(separator: ","))): its row clocks carry over"
                    )
                } else if !existingKey.isEmpty && existingKey != key {
                    try database.execute("DROP TABLE \(S.quote(S.changeLog(of: table.name)))")
                    notes.append(
                        "the primary key of \(table.name) changed (\(existingKey.joined(separator: ",")) → \(key.joined(separator: ","))): its row clocks start afresh"
                    )
                }
                try database.execute(S.changeLogTable(table))
                let hadTriggers = !(try hasTrigger.all([.text(S.trigger(of: table.name, "insert"))]).isEmpty)
                if !hadTriggers && !table.nullableKeyColumns.isEmpty {
                    notes.append(
                        "\(table.name): rows whose key (\(table.nullableKeyColumns.map(\.name).joined(separator: ", "))) is NULL are not replicated (a NULL names no row on another node); declare the key NOT NULL to have SQLite refuse such rows"
                    )
                }
                if !hadTriggers && !firstInstallation {
                    // A table that appeared since the last installation (created while we ran, or while the node
                    // was down): the rows it already has without a row clock were written before its triggers
                    // existed, so they are captured now. (At the first installation every node is assumed to
                    // start from the same database, as in HarmonyLite; a snapshot restore is how a different
                    // one catches up.) Whether the row-clock table exists says nothing: the applier creates it
                    // when other nodes' rows of the new table arrive first.
                    // A table installed before that lost its triggers was dropped and created again (the
                    // triggers go with the table): the row clocks it kept belong to the old table's rows, so
                    // every row is captured, also one whose key had a clock (skipping those, the new table's
                    // rows under old keys were never published). Not a table renamed onto this name: its
                    // triggers were adopted above, and its rows are the same rows.
                    let recreated = known && (!adopted.contains(table.name) || replaced.contains(table.name))
                    try database.execute(S.captureExistingRows(table, tableID: id, evenIfClocked: recreated))
                    let captured = database.changes
                    if captured > 0 { notes.append("\(table.name) is new and already had \(captured) row(s): they are captured now") }
                }
                for operation in ["insert", "update", "delete"] {
                    try database.execute("DROP TRIGGER IF EXISTS \(S.quote(S.trigger(of: table.name, operation)))")
                }
                for sql in S.triggers(table, tableID: id) { try database.execute(sql) }

                try database.execute("RELEASE harmonylite_table")
            } catch {
                try database.execute("ROLLBACK TO harmonylite_table")
                try database.execute("RELEASE harmonylite_table")
                tableIDs[table.name] = nil
                failed.append((table.name, "its capture triggers cannot be installed: \(error)"))
            }
        }
        if !failed.isEmpty {
            catalog.replicated.removeAll { table in failed.contains { $0.name == table.name } }
            catalog.refused += failed
        }
        if let takeover {
            notes.append(try UpstreamTakeover.queue(takeover, tableIDs: tableIDs, catalog: catalog, in: database))
        }
        try materializer.materialize()
        for refused in catalog.refused {
            for operation in ["insert", "update", "delete"] {
                try database.execute("DROP TRIGGER IF EXISTS \(S.quote(S.trigger(of: refused.name, operation)))")
            }
        }
        try ColumnHistory.installed(in: database)
        return ChangeLogInstallation(
            catalog: catalog,
            tableIDs: tableIDs,
            incarnation: String(decoding: incarnationBytes, as: UTF8.self),
            schemaHash: SchemaHash.of(catalog.replicated),
            notes: notes
        )
    }

    /// After `ALTER TABLE old RENAME TO new`, SQLite keeps our triggers attached to the renamed table under
    /// their old names, so `new` would be captured twice (and into `old`'s row clocks). Such triggers are
    /// dropped, and `old`'s row clocks and table id become `new`'s, so the rename keeps every row's stamp and
    /// the queue entries already waiting.
    ///
    /// Several renames are adopted in an order that frees each name before it is taken (`t → u`, then
    /// `s → t`; a cycle `t ↔ s` goes through a name no table has): adopted in the order the triggers came,
    /// `s`'s clocks were merged into the old `t`'s, the registry kept `s` (its name taken), and the writes
    /// queued for `s` were never published. A new name still registered after that belonged to a table
    /// dropped since (`DROP TABLE t; ALTER TABLE s RENAME TO t`): `old`'s clocks are merged into its (the later
    /// stamp of each key kept), `old`'s queue entries are `new`'s, and `new` is `replaced`: every row of it is
    /// captured again, with stamps after both tables' clocks.
    /// Returns the notes, the names of the tables that were renamed (their triggers were found under an old
    /// name), and those that replaced a dropped table of the same name.
    private static func adoptRenamedTables(
        _ database: SQLiteDatabase
    ) throws(SQLiteError) -> (
        notes: [String], renamed: Set<String>, replaced: Set<String>
    ) {
        typealias S = ChangeLogSchema
        var notes: [String] = []
        var renamed: Set<String> = []
        var moves: [(old: String, new: String)] = []
        let triggers = try database.rows(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' AND substr(name, 1, \(S.prefix.utf8.count)) = '\(S.prefix)'")
        for row in triggers {
            guard let name = row[0], let table = row[1] else { continue }
            let operations = ["insert", "update", "delete"]
            guard !operations.contains(where: { S.trigger(of: table, $0) == name }) else { continue }
            try database.execute("DROP TRIGGER IF EXISTS \(S.quote(name))")
            renamed.insert(table)
            guard let operation = operations.first(where: { name.hasSuffix("_change_log_on_" + $0) }) else { continue }
            let old = String(name.dropFirst(S.prefix.count).dropLast(("_change_log_on_" + operation).count))
            if !moves.contains(where: { $0.old == old }) { moves.append((old, table)) }
        }
        // Both ignore ASCII case, as SQLite's names do.
        let exists = try database.prepare("SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE")
        func hasClocks(_ table: String) throws(SQLiteError) -> Bool { try exists.all([.text(Array(S.changeLog(of: table).utf8))]).first?.first == .integer(1) }
        /// The registry row of `old` (exactly as registered) takes the name `new`.
        func rename(_ old: String, to new: String) throws(SQLiteError) {
            let id = try database.prepare("SELECT id FROM \(S.quote(S.tables)) WHERE name = ?").all([.text(Array(old.utf8))]).first?.first
            guard case .integer(let id)? = id else { return }
            try Self.claimRegistryName(new, for: id, in: database)
        }
        // Rows UNIQUE settlement holds aside for a table, and the values they wait for, are its rows too: they
        // follow its name (the values' table was left behind, and a value freed later found no row to place).
        var heldAside: [SQLiteStatement] = []
        for table in [S.conflicts, S.heldValues] {
            heldAside.append(try database.prepare("UPDATE OR IGNORE \(S.quote(table)) SET table_name = ? WHERE table_name = ?"))
        }
        func moveHeldAside(from old: String, to new: String) throws(SQLiteError) {
            for statement in heldAside { try statement.run([.text(Array(new.utf8)), .text(Array(old.utf8))]) }
        }
        func move(_ old: String, to new: String) throws(SQLiteError) {
            try database.execute("ALTER TABLE \(S.quote(S.changeLog(of: old))) RENAME TO \(S.quote(S.changeLog(of: new)))")
            try rename(old, to: new)
        }
        var replaced: Set<String> = []
        var parked = 0
        var originals: [String: String] = [:]
        while !moves.isEmpty {
            guard let index = moves.firstIndex(where: { move in !moves.contains { $0.old != move.old && Self.sameSQLiteName($0.old, move.new) } }) else {
                // A cycle: one of them steps aside to a name no table has.
                let aside = "\u{1}renamed \(parked)"
                parked += 1
                if try hasClocks(moves[0].old) { try move(moves[0].old, to: aside) }
                try moveHeldAside(from: moves[0].old, to: aside)
                originals[aside] = moves[0].old
                moves[0].old = aside
                continue
            }
            let (old, table) = moves.remove(at: index)
            guard try hasClocks(old) else { continue }
            if Self.sameSQLiteName(old, table) {
                // `t` → `x` → `T`: SQLite's names ignore ASCII case, so the row clocks are the table's already;
                // only the registry's spelling changes (renaming the clocks failed: "there is already another
                // table", at every installation, and capture stopped).
                try rename(old, to: table)
            } else if let taken = try Self.registeredID(table, in: database) {
                // `table` names a table dropped since, whose clocks and id are still there.
                if !(try mergeRowClocks(from: S.changeLog(of: old), into: S.changeLog(of: table), database)) {
                    try database.execute("DROP TABLE IF EXISTS \(S.quote(S.changeLog(of: table)))")
                    try database.execute("ALTER TABLE \(S.quote(S.changeLog(of: old))) RENAME TO \(S.quote(S.changeLog(of: table)))")
                }
                if let oldID = try Self.registeredID(old, in: database) {
                    try database.prepare("UPDATE \(S.quote(S.globalLog)) SET table_id = ? WHERE table_id = ?").run([.integer(taken), .integer(oldID)])
                }
                // The registry spells the name as the table now does (`DROP TABLE t; … RENAME TO T`: the table
                // loop looks it up exactly, and a second id for T left the re-pointed entries unpublished).
                try Self.claimRegistryName(table, for: taken, in: database)
                // The dropped table's rows held aside went with it: they are not the new table's.
                for held in [S.conflicts, S.heldValues] {
                    try database.prepare("DELETE FROM \(S.quote(held)) WHERE table_name = ? COLLATE NOCASE").run([.text(Array(table.utf8))])
                }
                replaced.insert(table)
                notes.append(
                    "\(originals[old] ?? old) was renamed to \(table), which replaces a table \(table) dropped since: its waiting changes carry over, and its rows are captured again"
                )
            } else if try hasClocks(table) {
                // The applier wrote rows under the new name before this installation (a change from a node that
                // renamed first, applied the moment the rename committed): both row clocks are kept, the later
                // version of each row winning, or the old clocks and the waiting changes would be lost.
                guard try mergeRowClocks(from: S.changeLog(of: old), into: S.changeLog(of: table), database) else { continue }
                try rename(old, to: table)
            } else {
                try move(old, to: table)
            }
            try moveHeldAside(from: old, to: table)
            if !replaced.contains(table) {
                notes.append("\(originals[old] ?? old) was renamed to \(table): its row clocks, waiting changes and rows held aside carry over")
            }
        }
        return (notes, renamed, replaced)
    }

    /// Gives registry row `id` the spelling `name`: another row holding the name in any case (a table dropped
    /// since: SQLite's names ignore case, the registry's UNIQUE does not) is renamed out of the way first, to
    /// a name no table has, so its queue entries stay those of no table. Before, `T` renamed back to a dropped
    /// `t`'s spelling failed every installation ("UNIQUE constraint failed"), and `DROP TABLE t; CREATE TABLE
    /// T` made T a new table whose rows under keys t had clocks for were never captured.
    static func claimRegistryName(_ name: String, for id: Int64, in database: SQLiteDatabase) throws(SQLiteError) {
        typealias S = ChangeLogSchema
        try database.prepare("UPDATE \(S.quote(S.tables)) SET name = char(1) || 'dropped ' || id WHERE name = ? COLLATE NOCASE AND id != ?")
            .run([.text(Array(name.utf8)), .integer(id)])
        try database.prepare("UPDATE \(S.quote(S.tables)) SET name = ? WHERE id = ?").run([.text(Array(name.utf8)), .integer(id)])
    }

    /// The registry's id for `name` in any case, its exact spelling first; nil when none.
    static func registeredID(_ name: String, in database: SQLiteDatabase) throws(SQLiteError) -> Int64? {
        let rows = try database.prepare(
            "SELECT id FROM \(ChangeLogSchema.quote(ChangeLogSchema.tables)) WHERE name = ? COLLATE NOCASE AND substr(name, 1, 1) != char(1) ORDER BY name = ? DESC, id DESC"
        ).all([.text(Array(name.utf8)), .text(Array(name.utf8))])
        if case .integer(let id) = rows.first?.first { return id }
        return nil
    }

    /// Whether SQLite takes `a` and `b` for one name: identifiers compare ignoring ASCII case only.
    static func sameSQLiteName(_ a: String, _ b: String) -> Bool {
        func folded(_ name: String) -> [UInt8] { name.utf8.map { (65...90).contains($0) ? $0 + 32 : $0 } }
        return folded(a) == folded(b)
    }

    /// Moves the row clocks of `old` into `new` where they are later than `new`'s (or `new` has none), and
    /// drops `old`; false (nothing done) when their keys differ.
    private static func mergeRowClocks(from old: String, into new: String, _ database: SQLiteDatabase) throws(SQLiteError) -> Bool {
        typealias S = ChangeLogSchema
        let columns = try database.prepare("SELECT name FROM pragma_table_info(?) ORDER BY cid")
        let keys = try database.prepare("SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk")
        func names(_ statement: SQLiteStatement, _ table: String) throws(SQLiteError) -> [String] {
            try statement.all([.text(table)]).compactMap { row -> String? in
                if case .text(let bytes) = row.first { return String(decoding: bytes, as: UTF8.self) } else { return nil }
            }
        }
        let oldColumns = try names(columns, old), key = try names(keys, old)
        guard !key.isEmpty, Set(oldColumns) == Set(try names(columns, new)), key == (try names(keys, new)) else { return false }
        let list = oldColumns.map(S.quote).joined(separator: ", ")
        let stamp = S.quote(S.stampColumn), node = S.quote(S.nodeColumn), deleted = S.quote(S.deletedColumn)
        let later = StampOrder.supersedes(stamp: "excluded.\(stamp)", writer: "excluded.\(node)", over: stamp, node)
        try database.execute(
            "INSERT INTO \(S.quote(new)) (\(list)) SELECT \(list) FROM \(S.quote(old)) WHERE true "
                + "ON CONFLICT (\(key.map(S.quote).joined(separator: ", "))) DO UPDATE SET \(stamp) = excluded.\(stamp), \(node) = excluded.\(node), "
                + "\(deleted) = excluded.\(deleted) WHERE \(later)")
        try database.execute("DROP TABLE \(S.quote(old))")
        return true
    }

    /// After `ALTER TABLE t RENAME COLUMN k TO key` of a key column (certain: `ColumnHistory`), the row
    /// clocks' key column is renamed the same way, so every row keeps its stamp and tombstone (and the stamps
    /// still pending are written under the new name). A key that changed otherwise is left to the
    /// installation, which starts its row clocks afresh.
    private static func renameRowClockKeys(_ tables: [TableInfo], _ database: SQLiteDatabase) throws(SQLiteError) -> [String] {
        typealias S = ChangeLogSchema
        var notes: [String] = []
        let logKey = try database.prepare("SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk")
        for table in tables {
            let existing = try logKey.all([.text(S.changeLog(of: table.name))]).compactMap { row -> String? in
                if case .text(let bytes) = row.first { return String(decoding: bytes, as: UTF8.self) } else { return nil }
            }
            let key = table.primaryKey.map(\.name)
            guard !existing.isEmpty, existing != key, existing.count == key.count else { continue }
            var renames: [(String, String)] = []
            for (old, new) in zip(existing, key) where old != new {
                guard try ColumnHistory.fate(of: old, in: table.name, database: database) == .renamed(to: new) else { renames = []; break }
                renames.append((old, new))
            }
            guard !renames.isEmpty else { continue }
            try database.execute("SAVEPOINT harmonylite_key_rename")
            do throws(SQLiteError) {
                for (old, new) in renames {
                    try database.execute("ALTER TABLE \(S.quote(S.changeLog(of: table.name))) RENAME COLUMN \(S.quote(old)) TO \(S.quote(new))")
                }
                try database.execute("RELEASE harmonylite_key_rename")
                notes.append(
                    "the key of \(table.name) was renamed (\(existing.joined(separator: ",")) → \(key.joined(separator: ","))): its row clocks carry over")
            } catch {
                // Names crossing each other (a swap): the installation starts the row clocks afresh instead.
                try database.execute("ROLLBACK TO harmonylite_key_rename")
                try database.execute("RELEASE harmonylite_key_rename")
            }
        }
        return notes
    }

    private static func randomHex(_ bytes: Int) -> String {
        (0..<bytes).map { _ in String(UInt8.random(in: 0...255), radix: 16) }.map { $0.count == 1 ? "0" + $0 : $0 }.joined()
    }
}

/// HarmonyLite's schema hash: SHA-256 (hex) over the tables sorted by name, each as its name followed by
/// `|name:type:notnull:pk` for every column sorted by name, and a newline.
public enum SchemaHash {
    public static func of(_ tables: [TableInfo]) -> String {
        var text = ""
        for table in tables.sorted(by: { $0.name < $1.name }) {
            text += table.name
            for column in table.columns.sorted(by: { $0.name < $1.name }) {
                text += "|\(column.name):\(column.declaredType):\(column.notNull):\(column.primaryKeyPosition > 0)"
            }
            text += "\n"
        }
        return sha256Hex(Array(text.utf8))
    }

    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = bytes.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &digest, &length, EVP_sha256(), nil) }
        return digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
