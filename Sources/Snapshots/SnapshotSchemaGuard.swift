import ChangeLog
import SQLiteKit

/// What a snapshot may bring into the live database besides rows: never code the live database does not
/// already run, and none of our tables but the ones a snapshot carries.
///
/// A snapshot is the whole database file of another node (authenticated by its signature, but a node's
/// database is still only as trustworthy as everything that ever wrote to it), and restoring it replaces the
/// live content in one step: a trigger in it would run on this node's next application write (and its effect
/// would replicate everywhere), a view would answer the application's queries. So, in the prepared copy,
/// before it replaces anything:
/// - every trigger and every view that the live database does not hold identically (same type, name and SQL
///   text) is dropped — the live database's code is what this node's application installed; a trigger the
///   saving node's application has and this one's has not yet comes when this node's application creates it;
/// - every trigger on one of our tables, and every trigger or view under our prefix, is dropped (ours are
///   installed afresh on the copy, from the live catalog);
/// - every table of ours other than what a snapshot carries (`ChangeLogSchema.snapshotContent`: the row clocks
///   of the snapshot's tables, the parked messages, the column history, the rows held aside) is dropped;
/// - an application table the live database lacks is dropped, unless the live database has no application
///   table at all (a new node bootstrapping from the cluster's snapshot takes its tables and indexes).
/// Dropped, not refused: an honest snapshot from a node a migration ahead must still restore. Each object
/// dropped is named in the restore's log, loudly.
public enum SnapshotSchemaGuard {
    struct Object: Hashable {
        var type: String
        var name: String
        var table: String
        var sql: String
    }

    static func objects(_ database: SQLiteDatabase) throws(SQLiteError) -> [Object] {
        try database.rows("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE substr(name, 1, 7) != 'sqlite_' ORDER BY rowid").map {
            Object(type: $0[0] ?? "", name: $0[1] ?? "", table: $0[2] ?? "", sql: $0[3] ?? "")
        }
    }

    static func isOurs(_ name: String) -> Bool { name.hasPrefix(ChangeLogSchema.prefix) }

    /// Drops from `snapshot` what it may not bring into `live`; returns a line for each object dropped.
    public static func confine(_ snapshot: SQLiteDatabase, toWhat live: SQLiteDatabase) throws(SQLiteError) -> [String] {
        let liveObjects = try objects(live)
        let liveCode = Set(liveObjects.filter { $0.type == "trigger" || $0.type == "view" })
        let liveTables = Set(liveObjects.filter { $0.type == "table" && !isOurs($0.name) }.map(\.name))
        let snapshotObjects = try objects(snapshot)
        let snapshotTables = Set(snapshotObjects.filter { $0.type == "table" && !isOurs($0.name) }.map(\.name))
        let keptTables = liveTables.isEmpty ? snapshotTables : snapshotTables.intersection(liveTables)
        let ourAllowed = ChangeLogSchema.snapshotContent(rowClocksOf: keptTables)

        var drops: [(sql: String, note: String)] = []
        for object in snapshotObjects {
            let quoted = HarmonyLiteObjects.quoted(object.name)
            switch object.type {
            case "trigger":
                if isOurs(object.name) || isOurs(object.table) {
                    drops.append(
                        ("DROP TRIGGER IF EXISTS \(quoted)", "the snapshot's trigger \(quoted) on \(object.table) (a trigger on our tables or under our name)"))
                } else if !liveCode.contains(object) {
                    drops.append(
                        ("DROP TRIGGER IF EXISTS \(quoted)", "the snapshot's trigger \(quoted) on \(object.table), which this database does not have as it is"))
                }
            case "view":
                if isOurs(object.name) || !liveCode.contains(object) {
                    drops.append(("DROP VIEW IF EXISTS \(quoted)", "the snapshot's view \(quoted), which this database does not have as it is"))
                }
            case "table":
                if isOurs(object.name) {
                    if !ourAllowed.contains(object.name) {
                        drops.append(("DROP TABLE IF EXISTS \(quoted)", "the snapshot's table \(quoted), which no snapshot carries"))
                    }
                } else if !keptTables.contains(object.name) {
                    drops.append(("DROP TABLE IF EXISTS \(quoted)", "the snapshot's table \(quoted), which this database does not have"))
                }
            default:
                break  // indexes: a dropped table takes its own along
            }
        }
        guard !drops.isEmpty else { return [] }
        // Triggers and views first: a table's drop would take its triggers along unnamed.
        let ordered = drops.filter { !$0.sql.hasPrefix("DROP TABLE") } + drops.filter { $0.sql.hasPrefix("DROP TABLE") }
        try snapshot.execute("BEGIN IMMEDIATE")
        do throws(SQLiteError) {
            for drop in ordered { try snapshot.execute(drop.sql) }
            try snapshot.execute("COMMIT")
        } catch {
            try? snapshot.execute("ROLLBACK")
            throw error
        }
        return ordered.map { "dropped \($0.note) before the restore: a snapshot brings no code and no table this database lacks" }
    }
}
