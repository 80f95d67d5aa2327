import ChangeEvents
import SQLiteKit

/// Taking over a database upstream HarmonyLite (Go) managed, at the first start of this version on it.
///
/// Upstream keeps, under the same prefix and partly the same names as ours:
/// - `__harmonylite___change_log_global (id, change_table_id, table_name)`: one row per change not yet
///   published, in commit order;
/// - `__harmonylite__<t>_change_log (id, val_<column>…, type, created_at, state)`: the row's values at
///   each change (`created_at` in ms since 1970; `state` 0 pending, 1 published, -1 failed);
/// - triggers `__harmonylite__<t>_change_log_on_insert|update|delete` that write both.
///
/// The takeover is planned first without writing anything (`plan`): every pending change must name a
/// table this version captures, with a pending row holding its key, and the seq map (if any) must be
/// readable. Only then (`execute`, in the installer's transaction) are upstream's triggers and tables
/// dropped, and the pending changes queued in ours once ours exist, so the capturer publishes them (the
/// row's current values, as our queue always does). Any refusal leaves the database as it was.
public enum UpstreamTakeover {
    /// Why the takeover cannot run: the database is left untouched; `advice` says what to do.
    public struct Refusal: Error, CustomStringConvertible {
        public var reason: String
        public var advice: String
        public var description: String { "cannot take over upstream HarmonyLite's change log: \(reason). The database was left untouched. \(advice)" }
    }

    /// The result code of the `SQLiteError` an installation refused by the takeover throws: SQLITE_ERROR
    /// (1) with an extended part SQLite does not use, so a worker tells a refusal (a person must act; a
    /// restart refuses again) from a failure worth retrying.
    public static let refusalCode: Int32 = 1 | (200 << 8)

    public static func isRefusal(_ error: SQLiteError) -> Bool { error.code == refusalCode }

    /// One change upstream captured and had not published: its table and key.
    public struct PendingChange: Equatable, Sendable {
        public var table: String
        public var key: [SQLiteValue]
        /// When upstream's trigger ran (ms since 1970), if it recorded a plausible time.
        public var createdAt: Int64?
    }

    public struct Plan: Sendable {
        public var pending: [PendingChange]
        /// Upstream's seq map (stream → last sequence), empty when there was none.
        public var cursor: [String: UInt64]
        var triggers: [String]
        var tables: [String]
    }

    static let globalColumns: Set<String> = ["id", "change_table_id", "table_name"]

    /// Whether `database` holds upstream's change-log objects (its global log, a per-table log with a
    /// `state` column, or one of its triggers, which write `change_table_id`).
    public static func detect(_ database: SQLiteDatabase) throws(SQLiteError) -> Bool {
        let layout = try Layout.read(database)
        return layout.upstreamGlobal || !layout.upstreamLogs.isEmpty || !layout.upstreamTriggers.isEmpty
    }

    struct Layout {
        var upstreamGlobal = false
        var ourGlobalColumns = false
        /// Table name → upstream log name.
        var upstreamLogs: [String: String] = [:]
        var upstreamTriggers: [String] = []
        var allTriggers: [String] = []

        static func read(_ database: SQLiteDatabase) throws(SQLiteError) -> Layout {
            typealias S = ChangeLogSchema
            var layout = Layout()
            let columnsOf = try database.prepare("SELECT name FROM pragma_table_info(?)")
            func columns(_ table: String) throws(SQLiteError) -> Set<String> {
                Set(
                    try columnsOf.all([.text(table)]).compactMap { row -> String? in
                        if case .text(let bytes) = row.first { return String(decoding: bytes, as: UTF8.self) } else { return nil }
                    })
            }
            let global = try columns(S.globalLog)
            layout.upstreamGlobal = global.contains("change_table_id")
            layout.ourGlobalColumns = global.contains("table_id")
            let suffix = "_change_log"
            for table in try HarmonyLiteObjects.names(ofType: "table", in: database)
            where table.hasSuffix(suffix) && table != S.globalLog && table.utf8.count > S.prefix.utf8.count + suffix.utf8.count {
                let names = try columns(table)
                guard names.isSuperset(of: ["id", "type", "created_at", "state"]), !names.contains(S.stampColumn) else { continue }
                layout.upstreamLogs[String(table.dropFirst(S.prefix.count).dropLast(suffix.count))] = table
            }
            let triggers = try database.rows(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND substr(name, 1, \(S.prefix.utf8.count)) = '\(S.prefix)' ORDER BY name")
            for row in triggers {
                guard let name = row[0] else { continue }
                layout.allTriggers.append(name)
                if let sql = row[1], sql.contains("change_table_id") { layout.upstreamTriggers.append(name) }
            }
            return layout
        }
    }

    /// Reads everything the takeover needs and checks that it can finish; writes nothing. Nil when the
    /// database has none of upstream's objects.
    /// - Parameter seqMapPath: upstream's seq map (`seq_map_path`), nil to keep no cursor.
    public static func plan(_ database: SQLiteDatabase, catalog: TableCatalog, seqMapPath: String?) throws(SQLiteError) -> Result<Plan, Refusal>? {
        typealias S = ChangeLogSchema
        let layout = try Layout.read(database)
        guard layout.upstreamGlobal || !layout.upstreamLogs.isEmpty || !layout.upstreamTriggers.isEmpty else { return nil }
        let restart =
            "Start upstream HarmonyLite on this database again until its change log is published "
            + "(SELECT count(*) FROM \(S.globalLog) is 0), stop it, and start this version again."
        if layout.upstreamGlobal && layout.ourGlobalColumns {
            return .failure(
                Refusal(
                    reason: "\(S.globalLog) has both upstream's and this version's columns (an earlier version of ours altered it)",
                    advice:
                        "Stop the node, run `harmonylite -cleanup -config …` (it drops every __harmonylite__ object; the application's tables stay), and start it again."
                ))
        }
        var pending: [PendingChange] = []
        if layout.upstreamGlobal {
            let entries = try database.prepare("SELECT change_table_id, table_name FROM \(S.quote(S.globalLog)) ORDER BY id").all()
            var statements: [String: (SQLiteStatement, TableInfo)] = [:]
            for entry in entries {
                guard case .integer(let changeID) = entry[0], case .text(let tableBytes) = entry[1] else {
                    return .failure(Refusal(reason: "\(S.globalLog) has an entry without a change id or table name", advice: restart))
                }
                let table = String(decoding: tableBytes, as: UTF8.self)
                if statements[table] == nil {
                    guard let info = catalog.table(named: table) else {
                        let why = catalog.refused.first { $0.name == table }?.reason ?? "it no longer exists"
                        return .failure(
                            Refusal(
                                reason: "upstream captured changes of \(table) it has not published, and this version cannot replicate \(table) (\(why))",
                                advice: restart + " Or make \(table) replicable (a PRIMARY KEY) first."))
                    }
                    guard let log = layout.upstreamLogs[table] else {
                        return .failure(
                            Refusal(reason: "upstream's change log of \(table) is missing while \(S.globalLog) names changes of it", advice: restart))
                    }
                    let logColumns = try database.prepare("SELECT name FROM pragma_table_info(?)").all([.text(log)]).compactMap { row -> String? in
                        if case .text(let bytes) = row.first { return String(decoding: bytes, as: UTF8.self) } else { return nil }
                    }
                    let keyColumns = info.primaryKey.map { "val_" + $0.name }
                    guard keyColumns.allSatisfy(logColumns.contains) else {
                        return .failure(
                            Refusal(reason: "upstream's change log of \(table) lacks the key columns \(keyColumns.joined(separator: ", "))", advice: restart))
                    }
                    let select = "SELECT state, created_at, " + keyColumns.map(S.quote).joined(separator: ", ") + " FROM \(S.quote(log)) WHERE id = ?"
                    statements[table] = (try database.prepare(select), info)
                }
                let (statement, _) = statements[table]!
                guard let row = try statement.all([.integer(changeID)]).first, row[0] == .integer(0) else {
                    return .failure(Refusal(reason: "change \(changeID) of \(table) named in \(S.globalLog) is not pending in its change log", advice: restart))
                }
                var createdAt: Int64? = nil
                // Plausible times only: after 2000, before 2^47 ms (year 6429), so `<< 16` stays in range.
                if case .integer(let ms) = row[1], ms > 946_684_800_000, ms < 1 << 47 { createdAt = ms }
                pending.append(PendingChange(table: table, key: Array(row[2...]), createdAt: createdAt))
            }
        }
        var cursor: [String: UInt64] = [:]
        if let seqMapPath {
            do {
                cursor = try SeqMapFile.readUpstream(seqMapPath) ?? [:]
            } catch {
                return .failure(
                    Refusal(
                        reason: "\(error)",
                        advice:
                            "Move the seq map away (this node then consumes every stream from its start; row clocks decide what is newer) or restore it, and start again."
                    ))
            }
        }
        var tables = layout.upstreamLogs.values.sorted()
        if layout.upstreamGlobal { tables.append(S.globalLog) }
        return .success(Plan(pending: pending, cursor: cursor, triggers: layout.allTriggers, tables: tables))
    }

    /// Drops upstream's triggers (every trigger under the prefix: the installer creates ours again after)
    /// and tables. Inside the installer's transaction, before our tables are created.
    static func dropUpstreamObjects(_ plan: Plan, in database: SQLiteDatabase) throws(SQLiteError) {
        typealias S = ChangeLogSchema
        for trigger in plan.triggers { try database.execute("DROP TRIGGER IF EXISTS \(S.quote(trigger))") }
        for table in plan.tables { try database.execute("DROP TABLE IF EXISTS \(S.quote(table))") }
        // AUTOINCREMENT left their counters behind.
        if try database.scalarInteger("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'") > 0 {
            let forget = try database.prepare("DELETE FROM sqlite_sequence WHERE name = ?")
            for table in plan.tables { try forget.run([.text(table)]) }
        }
    }

    /// Queues the pending changes in ours (after our tables and table ids exist, before the stamps are
    /// materialized) and stores upstream's cursor where no cursor of ours exists. Returns a note.
    static func queue(_ plan: Plan, tableIDs: [String: Int64], catalog: TableCatalog, in database: SQLiteDatabase) throws(SQLiteError) -> String {
        typealias S = ChangeLogSchema
        let nowMilliseconds = try database.scalarInteger("SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)")
        var statements: [String: SQLiteStatement] = [:]
        for change in plan.pending {
            guard let id = tableIDs[change.table], let info = catalog.table(named: change.table) else {
                throw SQLiteError(code: 1, message: "\(change.table) has unpublished upstream changes but its capture could not be installed")
            }
            if statements[change.table] == nil {
                let columns = (["table_id", "at"] + (1...info.primaryKey.count).map { S.keyColumn($0) }).joined(separator: ", ")
                let values = Array(repeating: "?", count: info.primaryKey.count + 2).joined(separator: ", ")
                statements[change.table] = try database.prepare("INSERT INTO \(S.quote(S.globalLog)) (\(columns)) VALUES (\(values))")
            }
            let at = (change.createdAt ?? nowMilliseconds) << 16
            try statements[change.table]!.run([.integer(id), .integer(at)] + change.key)
        }
        var existing: Set<String> = []
        for row in try database.prepare("SELECT key FROM \(S.quote(S.meta)) WHERE substr(key, 1, 7) = 'cursor:'").all() {
            if case .text(let key) = row.first { existing.insert(String(decoding: key.dropFirst(7), as: UTF8.self)) }
        }
        let store = try database.prepare("INSERT OR REPLACE INTO \(S.quote(S.meta)) (key, value) VALUES (?, ?)")
        for (stream, sequence) in plan.cursor.sorted(by: { $0.key < $1.key }) where !existing.contains(stream) {
            try store.run([.text("cursor:" + stream), .integer(Int64(bitPattern: sequence))])
        }
        let cursor = describeCursor(plan.cursor)
        try store.run([.text("upstream_takeover"), .text("\(plan.pending.count) pending change(s); cursor \(cursor)")])
        return "took over upstream HarmonyLite's change log: \(plan.pending.count) change(s) it had not published are queued for publishing; "
            + "consumption continues from its seq map " + (cursor.isEmpty ? "(none: from each stream's start)" : "(\(cursor))")
    }
}
