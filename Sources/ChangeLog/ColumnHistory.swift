import SQLiteKit

/// What became of each column a replicated table ever had on this node, in `__harmonylite___columns`: live,
/// dropped, or renamed (to what). Other nodes keep sending a column until they run the same migration;
/// with this the applier ignores a column this node dropped and writes a renamed one under its new name,
/// instead of parking those changes for a column that will never exist here again.
///
/// Updated by every installation of the capture triggers: the capturer's after each schema change it
/// notices, with the columns as it saw them the moment it noticed (`look`, which takes no lock) and as they
/// are once it holds the write lock, so a column added and dropped again while it waited for the lock is
/// still known as dropped. Looks are recorded in schema-version order: one older than the last recorded is
/// ignored (replayed after a newer one, it would pass for changes made since). SQLite keeps no column
/// identity, so: one known column gone and one new column at its
/// position is a rename; columns gone with no new column are dropped; anything else between two looks
/// (a drop and a rename at once) is ambiguous, and changes naming those columns wait as parked messages
/// rather than lose a value to a wrong guess.
public enum ColumnHistory {
    public enum Fate: Equatable, Sendable {
        case dropped
        case renamed(to: String)
    }

    static let table = ChangeLogSchema.quote(ChangeLogSchema.columnHistory)
    /// The replicated tables' columns, and the schema version they were read at.
    public typealias Look = (tables: [TableInfo], schemaVersion: Int64)

    /// The `__harmonylite___meta` key holding the schema version of the last look recorded.
    static let versionKey = "columns_schema_version"

    /// The replicated tables' columns and the schema version they were read at, in one read transaction
    /// (no write lock: taken the moment a schema change is noticed, before waiting to record it).
    public static func look(in database: SQLiteDatabase) throws(SQLiteError) -> Look {
        try database.execute("BEGIN")
        do throws(SQLiteError) {
            let version = try database.scalarInteger("PRAGMA schema_version")
            let tables = try TableCatalog.read(database).replicated
            try database.execute("COMMIT")
            return (tables, version)
        } catch {
            try? database.execute("ROLLBACK")
            throw error
        }
    }

    /// Records the columns of `tables` as they were at `schemaVersion`; a look older than the last one
    /// recorded changes nothing. Call inside a write transaction.
    public static func update(_ tables: [TableInfo], schemaVersion: Int64, in database: SQLiteDatabase) throws(SQLiteError) {
        let meta = ChangeLogSchema.quote(ChangeLogSchema.meta)
        let recorded = try database.prepare("SELECT value FROM \(meta) WHERE key = ?").all([.text(versionKey)]).first?.first
        if case .integer(let last) = recorded, schemaVersion < last { return }
        try database.prepare("INSERT OR REPLACE INTO \(meta) (key, value) VALUES (?, ?)").run([.text(versionKey), .integer(schemaVersion)])
        let stored = try database.prepare("SELECT name, position FROM \(table) WHERE table_name = ? AND state = 'live'")
        let insert = try database.prepare("INSERT INTO \(table) (table_name, name, position, state, renamed_to) VALUES (?, ?, ?, 'live', NULL) "
            + "ON CONFLICT (table_name, name) DO UPDATE SET position = excluded.position, state = 'live', renamed_to = NULL")
        let retire = try database.prepare("UPDATE \(table) SET state = ?, renamed_to = ? WHERE table_name = ? AND name = ?")
        for info in tables {
            var known: [String: Int64] = [:]
            for row in try stored.all([.text(info.name)]) {
                if case .text(let name) = row[0], case .integer(let position) = row[1] { known[String(decoding: name, as: UTF8.self)] = position }
            }
            let current = Dictionary(uniqueKeysWithValues: info.columns.enumerated().map { ($0.element.name, Int64($0.offset)) })
            let gone = known.filter { current[$0.key] == nil }
            let new = Set(current.keys).subtracting(known.keys)
            if let (name, position) = gone.first, gone.count == 1, new.count == 1, let successor = new.first, current[successor] == position {
                try retire.run([.text("renamed"), .text(successor), .text(info.name), .text(name)])
            } else if new.isEmpty || known.isEmpty {
                for name in gone.keys { try retire.run([.text("dropped"), .null, .text(info.name), .text(name)]) }
            } else {
                // Columns gone and others new in one look (several ALTERs between two looks): a rename cannot
                // be told from a drop, and taking one for the other would lose values. Their changes wait.
                for name in gone.keys { try retire.run([.text("unknown"), .null, .text(info.name), .text(name)]) }
            }
            for (name, position) in current { try insert.run([.text(info.name), .text(name), .integer(position)]) }
        }
    }

    /// What became of `column` of `table`, if this node ever had it and it is gone.
    public static func fate(of column: String, in table: String, database: SQLiteDatabase) throws(SQLiteError) -> Fate? {
        var name = column
        // Follow renames (a → b → c); a column can be renamed several times before a message arrives.
        for _ in 0..<16 {
            let rows = try database.prepare("SELECT state, renamed_to FROM \(Self.table) WHERE table_name = ? AND name = ?").all([.text(table), .text(name)])
            guard let row = rows.first, case .text(let state) = row[0] else { return name == column ? nil : .renamed(to: name) }
            switch String(decoding: state, as: UTF8.self) {
            case "dropped": return .dropped
            case "unknown": return nil
            case "renamed":
                guard case .text(let next) = row[1] else { return .dropped }
                name = String(decoding: next, as: UTF8.self)
            default:
                return name == column ? nil : .renamed(to: name)
            }
        }
        return nil
    }
}
