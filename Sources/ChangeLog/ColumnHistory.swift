import SQLiteKit

/// What became of each column a replicated table ever had on this node (`__harmonylite___columns`: live,
/// dropped, renamed to what, or unknown), and of each table renamed here (`__harmonylite___renamed_tables`).
/// Other nodes keep sending the old names until they run the same migration; with this the applier writes a
/// renamed column or table under its new name and leaves out a dropped column, instead of parking those
/// changes for a name that will never exist here again.
///
/// Nothing is inferred from positions: a rename is recorded only when it is certain (docs/schema-changes.md).
/// Each look compares what SQLite itself records — the table's `CREATE TABLE` text in `sqlite_schema`
/// (`CreateTableText`) and the schema cookie, which every schema-changing statement advances by one — with
/// the previous look, kept in `__harmonylite___table_texts` and the meta key `columns_schema_version`, so the
/// comparison survives a restart (a node stopped for its migration). A table is the same table while our
/// capture triggers stay on it: SQLite carries them along `ALTER TABLE … RENAME TO`, and drops them with the
/// table. Between two looks of a table:
/// - a text that differs only by names, with one old column name replaced everywhere by one new one, is a
///   rename when the cookie moved by one (one statement, and the only one that edits names in place is
///   `RENAME COLUMN`), or when the column can be neither dropped nor added (`CreateTableText.isFixed`: a key
///   column, UNIQUE, or named by constraints or other columns); otherwise a `DROP COLUMN` and an `ADD COLUMN`
///   could have written the same text, and the column's fate is unknown;
/// - columns gone with the cookie moved by one and no rename in the text were dropped (one `DROP COLUMN`);
/// - columns gone over several statements were dropped when no column now there could be one of them
///   renamed (a rename keeps the definition after the name, and the column's place among the others);
///   otherwise their fate is unknown.
/// Changes naming a column whose fate is unknown wait as parked messages: its values are never written into
/// another column.
///
/// Looks are recorded in schema-version order: one older than the last recorded is ignored (replayed after a
/// newer one, it would pass for changes made since).
public enum ColumnHistory {
    public enum Fate: Equatable, Sendable {
        case dropped
        case renamed(to: String)
        /// Dropped or renamed: two histories explain what SQLite recorded (`docs/schema-changes.md`). Its values
        /// are kept aside, never written into another column; the rest of a row applies.
        case unknown
    }

    /// The replicated tables as one read transaction saw them.
    public struct Look: Sendable {
        public var tables: [TableInfo]
        /// Each table's `CREATE TABLE` text.
        public var sql: [String: String]
        /// Each table that has our capture triggers: the name it had when they were installed.
        public var installedAs: [String: String]
        public var schemaVersion: Int64
    }

    static let table = ChangeLogSchema.quote(ChangeLogSchema.columnHistory)
    static let texts = ChangeLogSchema.quote(ChangeLogSchema.tableTexts)
    static let renamedTables = ChangeLogSchema.quote(ChangeLogSchema.renamedTables)

    /// The `__harmonylite___meta` key holding the schema version of the last look recorded.
    static let versionKey = "columns_schema_version"

    /// The replicated tables, their CREATE text and triggers, and the schema version, in one read transaction
    /// (no write lock: taken the moment a schema change is noticed, before waiting to record it).
    public static func look(in database: SQLiteDatabase) throws(SQLiteError) -> Look {
        try database.execute("BEGIN")
        do throws(SQLiteError) {
            let look = try lookInTransaction(database)
            try database.execute("COMMIT")
            return look
        } catch {
            try? database.execute("ROLLBACK")
            throw error
        }
    }

    /// `look` inside a transaction the caller holds.
    static func lookInTransaction(_ database: SQLiteDatabase) throws(SQLiteError) -> Look {
        let version = try database.scalarInteger("PRAGMA schema_version")
        let tables = try TableCatalog.read(database).replicated
        var sql: [String: String] = [:]
        for row in try database.rows("SELECT name, sql FROM sqlite_master WHERE type = 'table'") {
            if let name = row[0], let text = row[1] { sql[name] = text }
        }
        var installedAs: [String: String] = [:]
        let suffix = "_change_log_on_insert"
        for row in try database.rows(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' AND substr(name, 1, \(ChangeLogSchema.prefix.utf8.count)) = '\(ChangeLogSchema.prefix)'"
        ) {
            guard let name = row[0], let table = row[1], name.hasSuffix(suffix) else { continue }
            installedAs[table] = String(name.dropFirst(ChangeLogSchema.prefix.count).dropLast(suffix.count))
        }
        return Look(tables: tables, sql: sql, installedAs: installedAs, schemaVersion: version)
    }

    /// Records what became of the columns between the last look recorded and `look`; a look older than the
    /// last one recorded changes nothing. Call inside a write transaction.
    public static func update(_ look: Look, in database: SQLiteDatabase) throws(SQLiteError) {
        let meta = ChangeLogSchema.quote(ChangeLogSchema.meta)
        let recorded = try database.prepare("SELECT value FROM \(meta) WHERE key = ?").all([.text(versionKey)]).first?.first
        var last: Int64?
        if case .integer(let value) = recorded { last = value }
        if let last, look.schemaVersion < last { return }
        let oneStatement = last.map { look.schemaVersion &- $0 == 1 } ?? false
        try database.prepare("INSERT OR REPLACE INTO \(meta) (key, value) VALUES (?, ?)").run([.text(versionKey), .integer(look.schemaVersion)])
        let readText = try database.prepare("SELECT sql FROM \(texts) WHERE table_name = ? AND installed = ?")
        let writeText = try database.prepare("INSERT OR REPLACE INTO \(texts) (table_name, installed, sql) VALUES (?, ?, ?)")
        let present = Set(look.tables.map(\.name))
        for info in look.tables {
            guard let sql = look.sql[info.name] else { continue }
            let installedAs = look.installedAs[info.name]
            var previous: String?
            if let installedAs {
                previous = try readText.all([.text(installedAs), .integer(1)]).first?.first.flatMap(\.text)
                if installedAs != info.name && !present.contains(installedAs) { try recordTableRename(installedAs, to: info.name, in: database) }
                try writeText.run([.text(installedAs), .integer(1), .text(sql)])
            } else {
                // Not installed yet: seen by an earlier look since the last installation, or new. (A table that
                // had our triggers and lost them was dropped: this one under its name is another table.)
                previous = try readText.all([.text(info.name), .integer(0)]).first?.first.flatMap(\.text)
                try writeText.run([.text(info.name), .integer(0), .text(sql)])
            }
            try record(info, previous: previous, now: sql, oneStatement: oneStatement, in: database)
        }
    }

    /// After an installation: the tables' texts as the next look's comparison starts from, and the schema
    /// version after the installation's own changes. Call inside the installation's transaction.
    static func installed(in database: SQLiteDatabase) throws(SQLiteError) {
        let look = try lookInTransaction(database)
        try database.execute("DELETE FROM \(texts)")
        let writeText = try database.prepare("INSERT OR REPLACE INTO \(texts) (table_name, installed, sql) VALUES (?, ?, ?)")
        for info in look.tables {
            guard let sql = look.sql[info.name] else { continue }
            try writeText.run([.text(info.name), .integer(look.installedAs[info.name] == info.name ? 1 : 0), .text(sql)])
        }
        try database.prepare("INSERT OR REPLACE INTO \(ChangeLogSchema.quote(ChangeLogSchema.meta)) (key, value) VALUES (?, ?)")
            .run([.text(versionKey), .integer(look.schemaVersion)])
    }

    /// `ALTER TABLE old RENAME TO new`, certain (our triggers followed the table): changes naming `old` are
    /// applied to `new`, with its column history.
    private static func recordTableRename(_ old: String, to new: String, in database: SQLiteDatabase) throws(SQLiteError) {
        try database.prepare("DELETE FROM \(renamedTables) WHERE name = ?").run([.text(new)])
        try database.prepare("INSERT OR REPLACE INTO \(renamedTables) (name, renamed_to) VALUES (?, ?)").run([.text(old), .text(new)])
        try database.prepare("UPDATE OR REPLACE \(table) SET table_name = ? WHERE table_name = ?").run([.text(new), .text(old)])
    }

    private enum Outcome { case dropped, renamed(String), unknown }

    private static func record(_ info: TableInfo, previous: String?, now: String, oneStatement: Bool, in database: SQLiteDatabase) throws(SQLiteError) {
        var known: [String: Int64] = [:]
        for row in try database.prepare("SELECT name, position FROM \(table) WHERE table_name = ? AND state = 'live'").all([.text(info.name)]) {
            if case .text(let name) = row[0], case .integer(let position) = row[1] { known[String(decoding: name, as: UTF8.self)] = position }
        }
        let current = info.columns.map(\.name)
        let gone = known.keys.filter { !current.contains($0) }.sorted { known[$0]! < known[$1]! }
        let fates = known.isEmpty ? [:] : decide(gone: gone, known: known, current: current, previous: previous, now: now, oneStatement: oneStatement)
        let retire = try database.prepare("UPDATE \(table) SET state = ?, renamed_to = ? WHERE table_name = ? AND name = ?")
        for name in gone {
            switch fates[name] ?? .unknown {
            case .dropped: try retire.run([.text("dropped"), .null, .text(info.name), .text(name)])
            case .renamed(let successor): try retire.run([.text("renamed"), .text(successor), .text(info.name), .text(name)])
            case .unknown: try retire.run([.text("unknown"), .null, .text(info.name), .text(name)])
            }
        }
        let insert = try database.prepare(
            "INSERT INTO \(table) (table_name, name, position, state, renamed_to) VALUES (?, ?, ?, 'live', NULL) "
                + "ON CONFLICT (table_name, name) DO UPDATE SET position = excluded.position, state = 'live', renamed_to = NULL")
        for (position, name) in current.enumerated() { try insert.run([.text(info.name), .text(name), .integer(Int64(position))]) }
    }

    /// The fate of each gone column: only what SQLite's record allows no other history for.
    private static func decide(
        gone: [String], known: [String: Int64], current: [String], previous: String?, now: String, oneStatement: Bool
    ) -> [String: Outcome] {
        guard !gone.isEmpty else { return [:] }
        guard let previous else {
            // No text to compare with (a table first seen by an older version): one statement that only
            // removed columns is a DROP COLUMN; anything else cannot be told.
            let dropped = oneStatement && current.allSatisfy { known[$0] != nil }
            return Dictionary(uniqueKeysWithValues: gone.map { ($0, dropped ? Outcome.dropped : .unknown) })
        }
        let before = CreateTableText(previous), after = CreateTableText(now)
        let byNormalized = Dictionary(current.map { (CreateTableText.normalized($0), $0) }, uniquingKeysWith: { first, _ in first })
        var fates: [String: Outcome] = [:]
        var gone = gone
        if let substitutions = before.substitutions(to: after) {
            var undecided: [String] = []
            for name in gone {
                let old = CreateTableText.normalized(name)
                guard let new = substitutions[old], new != old, let successor = byNormalized[new], known[successor] == nil else {
                    fates[name] = .unknown
                    continue
                }
                if oneStatement || before.isFixed(old, renamedTo: new, in: after) {
                    fates[name] = .renamed(successor)
                } else {
                    undecided.append(name)
                }
            }
            // Over several statements, a column that is not certainly renamed was dropped when no column now
            // there could be its rename (below): the texts may "differ only in names" through a type name
            // (`secret BLOB` dropped, `color TEXT` added), which no RENAME COLUMN changes.
            guard !oneStatement && !undecided.isEmpty else {
                for name in undecided { fates[name] = .unknown }
                return fates
            }
            gone = undecided
        }
        if oneStatement {
            // One statement, and not a rename: a DROP COLUMN when it only removed columns.
            let dropped = current.allSatisfy { known[$0] != nil }
            for name in gone { fates[name] = dropped ? .dropped : .unknown }
            return fates
        }
        // Several statements. A renamed column keeps its definition after the name (up to the names of
        // columns in it, which renames change too) and its place among the others.
        let names = Set(known.keys.map(CreateTableText.normalized) + current.map(CreateTableText.normalized))
        let stayed = current.filter { known[$0] != nil }
        let unchanged = stayed.allSatisfy { name in
            let key = CreateTableText.normalized(name)
            return before.body(of: key, placeholders: names) == after.body(of: key, placeholders: names) && after.body(of: key, placeholders: names) != nil
        }
        for name in gone {
            let old = CreateTableText.normalized(name)
            guard unchanged, let body = before.body(of: old, placeholders: names) else {
                fates[name] = .unknown
                continue
            }
            let couldBeIt = current.contains { candidate in
                guard after.body(of: CreateTableText.normalized(candidate), placeholders: names) == body else { return false }
                // Its place: the columns that stayed, in the order of now with the candidate standing for `name`,
                // must be in the order they had.
                let order = current.compactMap { $0 == candidate ? known[name] : (known[$0] != nil && $0 != candidate ? known[$0] : nil) }
                return order == order.sorted()
            }
            fates[name] = couldBeIt ? .unknown : .dropped
        }
        return fates
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
            case "unknown": return .unknown
            case "renamed":
                guard case .text(let next) = row[1] else { return .dropped }
                name = String(decoding: next, as: UTF8.self)
            default:
                return name == column ? nil : .renamed(to: name)
            }
        }
        return nil
    }

    /// The name `table` has here now, when this node renamed it (following renames a → b → c); nil when it
    /// was not renamed here.
    public static func currentName(ofTable table: String, database: SQLiteDatabase) throws(SQLiteError) -> String? {
        var name = table
        let next = try database.prepare("SELECT renamed_to FROM \(renamedTables) WHERE name = ?")
        for _ in 0..<16 {
            guard let row = try next.all([.text(name)]).first, case .text(let successor) = row[0] else { break }
            name = String(decoding: successor, as: UTF8.self)
        }
        return name == table ? nil : name
    }
}

extension SQLiteValue {
    fileprivate var text: String? {
        if case .text(let bytes) = self { return String(decoding: bytes, as: UTF8.self) }
        return nil
    }
}
