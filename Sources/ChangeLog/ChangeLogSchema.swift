/// Names and DDL of the objects capture and apply keep in the user database, under HarmonyLite's prefix.
///
/// - `__harmonylite__<t>_change_log`: the row clock of table t, one row per primary key ever written: the
///   last write's HLC stamp, the node that wrote it, and whether it was a delete (a tombstone). WITHOUT ROWID,
///   keyed like t (same collations). Local writes reach it after their transaction (`PendingStamps`).
/// - `__harmonylite___change_log_global`: the queue of local changes in commit order: table id, `at` (the
///   HLC of the write's commit time; NULL when the row clock was written with the entry) and the key
///   columns `k1…kN` (SQLite keeps each value's storage class). The capturer reads the row's values at
///   publish time, so one entry is all the trigger writes. Its highest id is never deleted, so ids keep
///   growing and stay unique per installation.
/// - `__harmonylite___tables`: table ids; `__harmonylite___meta`: installation facts and the publish
///   watermark; `__harmonylite___parked`: the dead letters, messages this node could not apply (see
///   `ParkedMessages`); `__harmonylite___conflicts`: UNIQUE conflicts the applier settled.
/// - Remote changes are not captured because the applier writes them with triggers off on its connection
///   (the replica role), not by a guard the triggers test: so the triggers work with
///   `PRAGMA trusted_schema=OFF` (HarmonyLite's `pragma_function_list` guard did not) and cost the
///   application one write less each.
/// - Triggers `__harmonylite__<t>_change_log_on_insert|_on_update|_on_delete` (HarmonyLite's names).
public enum ChangeLogSchema {
    public static let prefix = HarmonyLiteObjects.prefix
    public static let globalLog = prefix + "_change_log_global"
    public static let tables = prefix + "_tables"
    public static let meta = prefix + "_meta"
    public static let parked = prefix + "_parked"
    /// What became of every column replicated tables had (`ColumnHistory`).
    public static let columnHistory = prefix + "_columns"
    /// Each table's `CREATE TABLE` text at the last look, which the next one compares with (`ColumnHistory`).
    public static let tableTexts = prefix + "_table_texts"
    /// Tables renamed on this node: the old name and the new one (`ColumnHistory`).
    public static let renamedTables = prefix + "_renamed_tables"
    /// Rows held aside by the applier's UNIQUE settlement (`HeldAsideRows`): each one's latest version, which
    /// a later write holds a UNIQUE value of, with the row that holds it. A row leaves it when it is placed
    /// again (its value freed) or superseded (a newer version of it, or its delete).
    public static let conflicts = prefix + "_conflicts"
    /// What each held-aside row wants: per UNIQUE index, its folded term values (`HeldAsideRows.Signer`), so
    /// that a row written later finds the held-aside rows it may block, or free, by lookup.
    static let heldValues = prefix + "_held_values"
    /// The conflicts log of versions before held-aside rows: kept, under this name, for the operator to read.
    static let settledConflictsLog = prefix + "_conflicts_settled"
    /// The guard table of earlier versions (dropped at install): the replica role replaced it.
    static let formerApplyGuard = prefix + "_applying"
    public static let stampColumn = prefix + "hlc"
    public static let nodeColumn = prefix + "node"
    public static let deletedColumn = prefix + "deleted"

    public static func changeLog(of table: String) -> String { prefix + table + "_change_log" }
    public static func trigger(of table: String, _ operation: String) -> String { changeLog(of: table) + "_on_" + operation }
    public static func keyColumn(_ position: Int) -> String { "k\(position)" }

    /// A local write's stamp: the HLC for now, milliseconds since 1970 in the high 48 bits; the low 16 bits
    /// count writes to one row within one millisecond (or after the clock stepped back).
    static let nowStamp = "(CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) << 16)"

    static func quote(_ identifier: String) -> String { HarmonyLiteObjects.quoted(identifier) }

    /// Our tables a snapshot keeps: what last-writer-wins needs on the node that restores it (the row
    /// clocks: stamps and tombstones), what the snapshot's cursor already moved past (the parked messages),
    /// and what became of the snapshot's columns and tables (renamed ones). The rest is the saving node's own
    /// (its queue, table ids, publish watermark, incarnation, cursor — which travels in the metadata — and
    /// its last look at the schema, which the restoring node takes afresh). The rows held aside by UNIQUE
    /// settlement are part of the replicated state: a restored node places them again when their value is freed.
    public static func snapshotContent(replicated: [TableInfo]) -> Set<String> {
        snapshotContent(rowClocksOf: replicated.map(\.name))
    }

    /// The same, for the tables named.
    public static func snapshotContent(rowClocksOf tables: some Sequence<String>) -> Set<String> {
        Set(tables.map { changeLog(of: $0) } + [parked, columnHistory, renamedTables, conflicts, heldValues])
    }

    /// Tables every installation has.
    static let fixedTables = [
        "CREATE TABLE IF NOT EXISTS \(quote(globalLog)) (id INTEGER PRIMARY KEY, table_id INTEGER NOT NULL, at INTEGER)",
        "CREATE TABLE IF NOT EXISTS \(quote(tables)) (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
        "CREATE TABLE IF NOT EXISTS \(quote(meta)) (key TEXT PRIMARY KEY, value) WITHOUT ROWID",
        "DROP TABLE IF EXISTS \(quote(formerApplyGuard))",
        "CREATE TABLE IF NOT EXISTS \(quote(columnHistory)) (table_name TEXT NOT NULL, name TEXT NOT NULL, position INTEGER NOT NULL, "
            + "state TEXT NOT NULL, renamed_to TEXT, PRIMARY KEY (table_name, name)) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS \(quote(tableTexts)) (table_name TEXT NOT NULL, installed INTEGER NOT NULL, sql TEXT NOT NULL, "
            + "PRIMARY KEY (table_name, installed)) WITHOUT ROWID",
        "CREATE TABLE IF NOT EXISTS \(quote(renamedTables)) (name TEXT PRIMARY KEY, renamed_to TEXT NOT NULL) WITHOUT ROWID",
        // Before held-aside rows, the conflicts table was a log of settled conflicts (an `id` column): it is
        // kept for the operator under another name.
        "CREATE TABLE IF NOT EXISTS \(quote(conflicts)) (table_name TEXT NOT NULL, losing_key TEXT NOT NULL, "
            + "losing_stamp INTEGER NOT NULL, losing_writer INTEGER NOT NULL, losing_values TEXT NOT NULL, columns TEXT NOT NULL, "
            + "winning_key TEXT NOT NULL, winning_stamp INTEGER NOT NULL, winning_writer INTEGER NOT NULL, reason TEXT NOT NULL, "
            + "recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), version BLOB NOT NULL, winning_key_values BLOB NOT NULL, "
            + "PRIMARY KEY (table_name, losing_key)) WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS \(quote(conflicts + "_by_holder")) ON \(quote(conflicts)) (table_name, winning_key)",
        "CREATE TABLE IF NOT EXISTS \(quote(heldValues)) (table_name TEXT NOT NULL, index_name TEXT NOT NULL, value BLOB NOT NULL, "
            + "losing_key TEXT NOT NULL, PRIMARY KEY (table_name, index_name, value, losing_key)) WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS \(quote(heldValues + "_by_row")) ON \(quote(heldValues)) (table_name, losing_key)",
        "CREATE TABLE IF NOT EXISTS \(quote(parked)) (stream TEXT NOT NULL, sequence INTEGER NOT NULL, payload BLOB NOT NULL, "
            + "reason TEXT NOT NULL, kind TEXT NOT NULL, parked_at TEXT NOT NULL, attempts INTEGER NOT NULL, "
            + "PRIMARY KEY (stream, sequence)) WITHOUT ROWID",
    ]

    /// The row clock of `table`.
    static func changeLogTable(_ table: TableInfo) -> String {
        let keys = table.primaryKey.map { "\(quote($0.name)) COLLATE \(quote($0.collation))" }
        let keyList = table.primaryKey.map { quote($0.name) }.joined(separator: ", ")
        return "CREATE TABLE IF NOT EXISTS \(quote(changeLog(of: table.name))) ("
            + keys.joined(separator: ", ")
            + ", \(quote(stampColumn)) INTEGER NOT NULL, \(quote(nodeColumn)) INTEGER NOT NULL, \(quote(deletedColumn)) INTEGER NOT NULL"
            + ", PRIMARY KEY (\(keyList))) WITHOUT ROWID"
    }

    /// Captures every row `table` holds now, as its insert trigger would have: queues them with the time of
    /// now, for `StampMaterializer` to clock. `evenIfClocked`: also rows whose key has a row clock (the
    /// table was dropped and created again: the clocks are the old table's).
    static func captureExistingRows(_ table: TableInfo, tableID: Int64, evenIfClocked: Bool = false) -> String {
        let keys = table.primaryKey.map { quote($0.name) }
        let log = quote(changeLog(of: table.name))
        let globalColumns = (["table_id", "at"] + (1...keys.count).map { keyColumn($0) }).joined(separator: ", ")
        // Only rows without a row clock: rows the applier wrote (it may have created the row clocks first,
        // applying other nodes' rows of the same new table) are other nodes' writes, not ours.
        let unclocked =
            evenIfClocked
            ? keysPresent(table, row: "t")
            : "\(keysPresent(table, row: "t")) AND NOT EXISTS (SELECT 1 FROM \(log) c WHERE "
                + keys.map { "c.\($0) = t.\($0)" }.joined(separator: " AND ") + ")"
        let tableKeys = keys.map { "t.\($0)" }.joined(separator: ", ")
        return "INSERT INTO \(quote(globalLog)) (\(globalColumns)) SELECT \(tableID), \(nowStamp), \(tableKeys) FROM \(quote(table.name)) t WHERE \(unclocked)"
    }

    /// SQL true when `row`'s key has no NULL (see `TableInfo.nullableKeyColumns`); `row` nil: the table's own columns.
    static func keysPresent(_ table: TableInfo, row: String?) -> String {
        let checks = table.nullableKeyColumns.map { "\(row.map { $0 + "." } ?? "")\(quote($0.name)) IS NOT NULL" }
        return checks.isEmpty ? "true" : checks.joined(separator: " AND ")
    }

    /// The three capture triggers of `table`: each appends (table, commit time, key) to the queue, one
    /// B-tree write in the application's transaction; the row clock is stamped later (`PendingStamps`).
    static func triggers(_ table: TableInfo, tableID: Int64) -> [String] {
        let target = quote(table.name)
        let keys = table.primaryKey.map { quote($0.name) }
        let globalColumns = (["table_id", "at"] + (1...keys.count).map { keyColumn($0) }).joined(separator: ", ")

        func queue(_ row: String, onlyIfKeyChanged: Bool = false) -> String {
            let values = keys.map { "\(row).\($0)" }.joined(separator: ", ")
            let condition = (onlyIfKeyChanged ? "(\(keyChanged)) AND " : "") + keysPresent(table, row: row)
            let source = condition == "true" ? "VALUES (\(tableID), \(nowStamp), \(values))" : "SELECT \(tableID), \(nowStamp), \(values) WHERE \(condition)"
            return "INSERT INTO \(quote(globalLog)) (\(globalColumns)) \(source);"
        }
        var keyChanged: String { keys.map { "OLD.\($0) IS NOT NEW.\($0)" }.joined(separator: " OR ") }

        return [
            "CREATE TRIGGER \(quote(trigger(of: table.name, "insert"))) AFTER INSERT ON \(target)\nBEGIN\n  "
                + queue("NEW") + "\nEND",
            // A key-changing UPDATE is a delete of the old key plus a write of the new one.
            "CREATE TRIGGER \(quote(trigger(of: table.name, "update"))) AFTER UPDATE ON \(target)\nBEGIN\n  "
                + queue("OLD", onlyIfKeyChanged: true) + "\n  " + queue("NEW") + "\nEND",
            "CREATE TRIGGER \(quote(trigger(of: table.name, "delete"))) AFTER DELETE ON \(target)\nBEGIN\n  "
                + queue("OLD") + "\nEND",
        ]
    }
}
