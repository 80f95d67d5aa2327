import ChangeEvents
import SQLiteKit

/// Reads the local changes not yet published, as events: for each queued (table, key), the row's current
/// values and its clock, read together in one transaction. A row queued several times in one read becomes
/// one event (its latest state), at the position of its last change.
public final class ChangeReader {
    private let database: SQLiteDatabase
    private let tablesByID: [Int64: TableInfo]
    private let globalRead: SQLiteStatement
    private var statements: [String: (clock: SQLiteStatement, row: SQLiteStatement)] = [:]
    private let keyWidth: Int

    public init(database: SQLiteDatabase, installation: ChangeLogInstallation) throws(SQLiteError) {
        self.database = database
        var byID: [Int64: TableInfo] = [:]
        for table in installation.catalog.replicated {
            if let id = installation.tableIDs[table.name] { byID[id] = table }
        }
        tablesByID = byID
        keyWidth = installation.catalog.replicated.map { $0.primaryKey.count }.max() ?? 0
        let keys = (0..<keyWidth).map { ", " + ChangeLogSchema.keyColumn($0 + 1) }.joined()
        globalRead = try database.prepare(
            "SELECT id, table_id\(keys) FROM \(ChangeLogSchema.quote(ChangeLogSchema.globalLog)) WHERE id > ? ORDER BY id LIMIT ?")
    }

    public struct Pending: Sendable {
        public var events: [ChangeEvent]
        /// The highest change-log id read (events may be fewer: duplicates merged, entries of tables no
        /// longer replicated skipped).
        public var throughID: Int64?
        /// Entries skipped because their table is gone or no longer replicated.
        public var skipped: Int
    }

    public func pending(after watermark: Int64, limit: Int) throws(SQLiteError) -> Pending {
        try database.execute("BEGIN")
        defer { try? database.execute("COMMIT") }
        let entries = try globalRead.all([.integer(watermark), .integer(Int64(limit))])
        var latest: [RowIdentity: Int] = [:]
        var ordered: [(id: Int64, table: TableInfo, key: [SQLiteValue])] = []
        var skipped = 0
        for entry in entries {
            guard case .integer(let id) = entry[0], case .integer(let tableID) = entry[1], let table = tablesByID[tableID] else {
                skipped += 1
                continue
            }
            let key = Array(entry[2..<(2 + table.primaryKey.count)])
            let identity = RowIdentity(table: table.name, key: key)
            if let previous = latest[identity] { ordered[previous].id = -1 }
            latest[identity] = ordered.count
            ordered.append((id, table, key))
        }
        var events: [ChangeEvent] = []
        for item in ordered where item.id >= 0 {
            if let event = try event(for: item.table, key: item.key, changeID: item.id) { events.append(event) } else { skipped += 1 }
        }
        var throughID: Int64?
        if case .integer(let last) = entries.last?.first { throughID = last }
        return Pending(events: events, throughID: throughID, skipped: skipped)
    }

    private func event(for table: TableInfo, key: [SQLiteValue], changeID: Int64) throws(SQLiteError) -> ChangeEvent? {
        let (clockStatement, rowStatement) = try statements(for: table)
        guard let clock = try clockStatement.all(key).first,
            case .integer(let stamp) = clock[0], case .integer(let writer) = clock[1], case .integer(let deleted) = clock[2]
        else { return nil }
        let keyNames = table.primaryKey.map(\.name)
        if deleted == 0, let row = try rowStatement.all(key).first {
            let others = table.columns.filter { $0.primaryKeyPosition == 0 }
            return ChangeEvent(changeID: changeID, table: table.name, operation: .upsert, stamp: UInt64(bitPattern: stamp),
                               writer: UInt64(bitPattern: writer), columns: keyNames + others.map(\.name), values: row, keyCount: keyNames.count)
        }
        return ChangeEvent(changeID: changeID, table: table.name, operation: .delete, stamp: UInt64(bitPattern: stamp),
                           writer: UInt64(bitPattern: writer), columns: keyNames, values: key, keyCount: keyNames.count)
    }

    private func statements(for table: TableInfo) throws(SQLiteError) -> (clock: SQLiteStatement, row: SQLiteStatement) {
        if let cached = statements[table.name] { return cached }
        let q = ChangeLogSchema.quote
        let keyMatch = table.primaryKey.map { "\(q($0.name)) = ?" }.joined(separator: " AND ")
        let selected = (table.primaryKey + table.columns.filter { $0.primaryKeyPosition == 0 }).map { q($0.name) }.joined(separator: ", ")
        let pair = (
            clock: try database.prepare("SELECT \(q(ChangeLogSchema.stampColumn)), \(q(ChangeLogSchema.nodeColumn)), \(q(ChangeLogSchema.deletedColumn)) FROM \(q(ChangeLogSchema.changeLog(of: table.name))) WHERE \(keyMatch)"),
            row: try database.prepare("SELECT \(selected) FROM \(q(table.name)) WHERE \(keyMatch)")
        )
        statements[table.name] = pair
        return pair
    }
}

struct RowIdentity: Hashable {
    var table: String
    var key: [SQLiteValue]
}

/// The capturer's bookkeeping in `__harmonylite___meta`: how far JetStream has acknowledged the queue.
public enum PublishWatermark {
    public static func read(_ database: SQLiteDatabase) throws(SQLiteError) -> Int64 {
        let rows = try database.prepare("SELECT value FROM \(ChangeLogSchema.quote(ChangeLogSchema.meta)) WHERE key = 'published_through'").all()
        if case .integer(let value) = rows.first?.first { return value }
        return 0
    }

    public static func write(_ id: Int64, to database: SQLiteDatabase) throws(SQLiteError) {
        try database.prepare("INSERT OR REPLACE INTO \(ChangeLogSchema.quote(ChangeLogSchema.meta)) (key, value) VALUES ('published_through', ?)").run([.integer(id)])
    }

    /// The newest change-log id (0 when none was ever queued). Ids are consecutive and the newest entry is
    /// never deleted, so this minus the watermark is HarmonyLite's `pending_publish`, without counting rows.
    public static func lastQueuedID(in database: SQLiteDatabase) throws(SQLiteError) -> Int64 {
        try database.scalarInteger("SELECT coalesce(max(id), 0) FROM \(ChangeLogSchema.quote(ChangeLogSchema.globalLog))")
    }

    /// Deletes published queue entries, always keeping the newest row so that ids never restart.
    @discardableResult
    public static func removePublished(from database: SQLiteDatabase) throws(SQLiteError) -> Int {
        let q = ChangeLogSchema.quote
        try database.execute("""
            DELETE FROM \(q(ChangeLogSchema.globalLog)) WHERE id <= (SELECT value FROM \(q(ChangeLogSchema.meta)) WHERE key = 'published_through')
              AND id < (SELECT max(id) FROM \(q(ChangeLogSchema.globalLog)))
            """)
        return database.changes
    }
}
