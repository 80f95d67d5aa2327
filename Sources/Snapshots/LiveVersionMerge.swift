import ChangeEvents
import ChangeLog
import SQLiteKit

/// The row versions the live database holds that are later than the snapshot's, for the restore to keep.
///
/// A restore must not lose what the live database knows and the snapshot does not: this node's published
/// writes and other nodes' writes it applied, after the snapshot was taken, whose messages the streams no
/// longer hold (trimmed by `max_entries`). Every live row clock is compared with the snapshot's clock of
/// the same row by last-writer-wins (`StampOrder`, the applier's order, tombstones included); each live
/// version that is later (or whose row the snapshot has no clock for) becomes an event, which the restore
/// applies to the prepared copy with the applier, as if it had arrived from a stream.
///
/// One pass over each live row-clock table: the live database is attached to the prepared copy's
/// connection, and one join per table (live clock → snapshot clock and live row, both by primary key)
/// returns only the later versions, all read in one read transaction (a consistent state of the live
/// database). Memory: the later versions only.
///
/// Conservative where the two schemas differ, and says so in `notes` (counted): a table the snapshot lacks,
/// or whose primary key differs, keeps none of its live versions; a live column the snapshot lacks is left
/// out of the versions kept (its values are dropped); a snapshot column the live table lacks takes its
/// default, as it does for an event from a node without it. Live rows without a row clock (written before
/// capture was installed) are not compared: the snapshot's content stands for them, as before. A live clock
/// whose row the live table does not hold is kept as a delete, or, when the row is held aside by UNIQUE settlement, as its held-aside version. A
/// snapshot row without a clock (format 1, or never clocked on its node) loses to any live version, as it
/// would to any event.
enum LiveVersionMerge {
    struct Later {
        var events: [ChangeEvent]
        /// Live row clocks compared (one per row ever written, deleted ones included).
        var compared: Int
        /// What could not be kept and why, with counts.
        var notes: [String]
    }

    static let schema = "harmonylite_live"

    /// The live versions later than `prepared`'s (the snapshot copy, change logs installed).
    static func laterVersions(
        live livePath: String, liveTables: [TableInfo], prepared: SQLiteDatabase,
        snapshotTables: [TableInfo]
    ) throws -> Later {
        try prepared.prepare("ATTACH DATABASE ? AS \(schema)").run([.text(livePath)])
        defer { try? prepared.execute("DETACH DATABASE \(schema)") }
        try prepared.execute("BEGIN")
        defer { try? prepared.execute("COMMIT") }
        var later = Later(events: [], compared: 0, notes: [])
        for table in liveTables.sorted(by: { $0.name < $1.name }) {
            let clocks = try prepared.prepare("SELECT count(*) FROM \(schema).sqlite_master WHERE type = 'table' AND name = ?")
                .all([.text(ChangeLogSchema.changeLog(of: table.name))])
            guard clocks.first?.first != .integer(0) else { continue }
            guard let snapshotTable = snapshotTables.first(where: { $0.name == table.name }) else {
                let count = try versionCount(of: table)
                if count > 0 { later.notes.append("\(table.name) is not in the snapshot: \(count) live row version(s) of it are not kept") }
                continue
            }
            guard snapshotTable.primaryKey.map(\.name) == table.primaryKey.map(\.name) else {
                let count = try versionCount(of: table)
                later.notes.append(
                    "\(table.name)'s primary key differs in the snapshot (\(snapshotTable.primaryKey.map(\.name).joined(separator: ", "))): "
                        + "\(count) live row version(s) of it are not compared, none is kept")
                continue
            }
            let merged = try laterVersions(of: table, snapshotTable: snapshotTable, in: prepared)
            later.events += merged.events
            later.compared += merged.compared
            if !merged.droppedColumns.isEmpty {
                let upserts = merged.events.filter { $0.operation == .upsert }.count
                later.notes.append(
                    "\(table.name)'s column(s) \(merged.droppedColumns.joined(separator: ", ")) are not in the snapshot: "
                        + "their values in \(upserts) kept live row version(s) are dropped")
            }
        }
        return later

        func versionCount(of table: TableInfo) throws -> Int64 {
            guard
                case .integer(let count) = try prepared.prepare(
                    "SELECT count(*) FROM \(schema).\(q(ChangeLogSchema.changeLog(of: table.name)))"
                ).all().first?.first
            else { return 0 }
            return count
        }
    }

    /// One join over `table`'s live row clocks: the versions later than the snapshot's, as events.
    private static func laterVersions(
        of table: TableInfo, snapshotTable: TableInfo, in prepared: SQLiteDatabase
    ) throws
        -> (events: [ChangeEvent], compared: Int, droppedColumns: [String])
    {
        let keys = table.primaryKey.map(\.name)
        let snapshotColumns = Set(snapshotTable.columns.map(\.name))
        let others = table.columns.filter { $0.primaryKeyPosition == 0 }.map(\.name)
        let kept = others.filter { snapshotColumns.contains($0) }
        let dropped = others.filter { !snapshotColumns.contains($0) }
        let stamp = q(ChangeLogSchema.stampColumn), node = q(ChangeLogSchema.nodeColumn)
        let log = q(ChangeLogSchema.changeLog(of: table.name))
        func match(_ a: String, _ b: String) -> String { keys.map { "\(a).\(q($0)) = \(b).\(q($0))" }.joined(separator: " AND ") }
        // Row present: the row's own key (under a NOCASE key its case may differ from the clock's) and values.
        // Row absent but its clock alive: the row is held aside by UNIQUE settlement (`HeldAsideRows`), its
        // version kept whole in the conflicts table; it is kept as that version, never as a delete.
        // (A live database from before held-aside rows has no such table: nothing is held aside there.)
        let heldAside = try? prepared.prepare(
            "SELECT version FROM \(schema).\(q(ChangeLogSchema.conflicts)) WHERE table_name = ? AND losing_key = ? AND losing_stamp = ? AND losing_writer = ?")
        let selected =
            ["l.\(stamp)", "l.\(node)", "r.\(q(keys[0])) IS NOT NULL"] + keys.map { "l.\(q($0))" } + (keys + kept).map { "r.\(q($0))" }
            + ["l.\(q(ChangeLogSchema.deletedColumn))"]
        let sql =
            "SELECT \(selected.joined(separator: ", ")) FROM \(schema).\(log) l "
            + "LEFT JOIN main.\(log) s ON \(match("s", "l")) "
            + "LEFT JOIN \(schema).\(q(table.name)) r ON \(match("r", "l")) "
            + "WHERE s.\(stamp) IS NULL OR \(StampOrder.supersedes(stamp: "l.\(stamp)", writer: "l.\(node)", over: "s.\(stamp)", "s.\(node)"))"
        let statement = try prepared.prepare(sql)
        var events: [ChangeEvent] = []
        while try statement.step() {
            guard case .integer(let s) = statement.column(0), case .integer(let w) = statement.column(1) else { continue }
            let present = statement.column(2) == .integer(1)
            let base = 3 + keys.count
            if present {
                events.append(
                    ChangeEvent(
                        changeID: 0, table: table.name, operation: .upsert, stamp: UInt64(bitPattern: s), writer: UInt64(bitPattern: w),
                        columns: keys + kept, values: (base..<(base + keys.count + kept.count)).map(statement.column), keyCount: keys.count))
            } else if statement.column(base + keys.count + kept.count) == .integer(0),
                case .blob(let bytes)? = try heldAside?.all([
                    .text(table.name), .text((3..<base).map { statement.column($0).sqlLiteral }.joined(separator: ", ")),
                    .integer(s), .integer(w),
                ]).first?.first,
                let version = try? ChangeBatch(decoding: bytes).events.first
            {
                events.append(version)
            } else {
                events.append(
                    ChangeEvent(
                        changeID: 0, table: table.name, operation: .delete, stamp: UInt64(bitPattern: s), writer: UInt64(bitPattern: w),
                        columns: keys, values: (3..<base).map(statement.column), keyCount: keys.count))
            }
        }
        let total = try prepared.prepare("SELECT count(*) FROM \(schema).\(log)").all()
        guard case .integer(let compared) = total.first?.first else { return (events, 0, dropped) }
        return (events, Int(compared), dropped)
    }

    /// Applies the later versions to the prepared copy with its applier; returns how many won. A table
    /// whose versions cannot be written there (a constraint the snapshot's schema adds, say) keeps none of
    /// them, with the reason in `notes`, and the others are kept: one odd row does not stop a restore.
    static func keep(_ events: [ChangeEvent], applier: ChangeApplier, notes: inout [String]) throws -> Int {
        var remaining = events
        while true {
            do {
                return try applier.apply(remaining).applied
            } catch let error as ApplyError {
                let table = error.event.table
                let dropped = remaining.count
                remaining.removeAll { $0.table == table }
                notes.append("\(dropped - remaining.count) live row version(s) of \(table) are not kept: \(error)")
            }
        }
    }

    private static func q(_ identifier: String) -> String { HarmonyLiteObjects.quoted(identifier) }
}
