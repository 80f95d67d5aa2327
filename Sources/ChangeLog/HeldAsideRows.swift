import ChangeEvents
import SQLiteKit

/// The rows UNIQUE settlement holds aside (`ChangeLogSchema.conflicts`), and how the applier finds the rows
/// that hold a value one of them wants.
///
/// **The rule** (docs/convergence.md): each row's latest version is decided by its row clock, as always.
/// Among the rows whose latest versions want the same value of a UNIQUE index, rows are taken by descending
/// (stamp, writer): a row is in the table when none of its UNIQUE values is held by a row taken before it,
/// and held aside otherwise — its latest version kept here, whole, with the row that holds its value. So what
/// a node holds depends only on the latest versions it has applied, never on their order or on states it
/// passed through; and a row held aside comes back by itself once its value is free (the holder moved away
/// or was deleted). The applier keeps that state after every transaction (`ChangeApplier.settle`).
final class HeldAsideRows {
    struct Entry {
        var table: String
        var key: String
        var stamp: UInt64
        var writer: UInt64
        var version: ChangeEvent
        var holderKey: String
        /// The holder's key values (empty: none named yet).
        var holderKeyValues: [SQLiteValue]
        var holderStamp: UInt64
        var holderWriter: UInt64
        var label: String
    }

    /// A row of the table that holds a value an incoming row wants, with its row clock.
    struct Holder: Hashable {
        var key: [SQLiteValue]
        var stamp: UInt64
        var writer: UInt64
        var label: String

        var keyText: String { HeldAsideRows.keyText(key) }
    }

    private let database: SQLiteDatabase
    private let statement: StatementCache
    private var indexes: [String: [(index: UniqueIndex, holders: SQLiteStatement)]] = [:]
    private var probes: [String: String] = [:]
    private var probeInserts: [[String]: SQLiteStatement] = [:]
    /// UNIQUE indexes whose definition did not evaluate on a row, and those not reported yet.
    private var unreadable: Set<String> = []
    private var newlyUnreadable: [String] = []

    func takeNewlyUnreadable() -> [String] {
        defer { newlyUnreadable.removeAll() }
        return newlyUnreadable
    }

    init(database: SQLiteDatabase) {
        self.database = database
        statement = StatementCache(database)
    }

    /// Forgets what was read of the schema (indexes, probe tables' statements) after a migration.
    func schemaChanged() {
        statement.removeAll()
        indexes.removeAll()
        signers.removeAll()
        probeInserts.removeAll()
        for probe in probes.values { try? database.execute("DROP TABLE IF EXISTS temp.\(q(probe))") }
        probes.removeAll()
    }

    static func keyText(_ key: some Collection<SQLiteValue>) -> String { key.map(\.sqlLiteral).joined(separator: ", ") }

    private func q(_ identifier: String) -> String { ChangeLogSchema.quote(identifier) }

    // MARK: the table of rows held aside

    /// Whether any row is held aside (one indexed read).
    func any() throws(SQLiteError) -> Bool {
        try !statement("SELECT 1 FROM \(q(ChangeLogSchema.conflicts)) LIMIT 1").all().isEmpty
    }

    /// The tables that hold rows aside, among `tables` (nil: all).
    func tables(among tables: Set<String>?) throws(SQLiteError) -> [String] {
        if let tables {
            // One indexed look per table (its key's prefix), not a scan of every row held aside.
            let holds = try statement("SELECT 1 FROM \(q(ChangeLogSchema.conflicts)) WHERE table_name = ? LIMIT 1")
            var holding: [String] = []
            for table in tables.sorted() where try !holds.all([.text(table)]).isEmpty { holding.append(table) }
            return holding
        }
        return try statement("SELECT DISTINCT table_name FROM \(q(ChangeLogSchema.conflicts))").all().compactMap { row -> String? in
            guard case .text(let bytes) = row[0] else { return nil }
            let name = String(decoding: bytes, as: UTF8.self)
            return tables?.contains(name) ?? true ? name : nil
        }.sorted()
    }

    /// The rows `table` holds aside (only those of `keys`, when given), latest version first.
    func entries(in table: String, keys: Set<String>? = nil) throws -> [Entry] {
        let columns = "losing_key, losing_stamp, losing_writer, version, winning_key, winning_stamp, winning_writer, columns, winning_key_values"
        var rows: [[SQLiteValue]] = []
        if let keys {
            let one = try statement("SELECT \(columns) FROM \(q(ChangeLogSchema.conflicts)) WHERE table_name = ? AND losing_key = ?")
            for key in keys { rows += try one.all([.text(table), .text(key)]) }
        } else {
            rows = try statement("SELECT \(columns) FROM \(q(ChangeLogSchema.conflicts)) WHERE table_name = ?").all([.text(table)])
        }
        var entries: [Entry] = []
        for row in rows {
            guard case .text(let key) = row[0], case .integer(let stamp) = row[1], case .integer(let writer) = row[2], case .blob(let version) = row[3],
                case .text(let holderKey) = row[4], case .integer(let holderStamp) = row[5], case .integer(let holderWriter) = row[6],
                case .text(let label) = row[7], case .blob(let keeper) = row[8], let decoded = try? ChangeBatch(decoding: version).events.first
            else { continue }
            // Its version under the table's current name (a table renamed since keeps its rows held aside).
            var event = decoded
            event.table = table
            entries.append(
                Entry(
                    table: table, key: String(decoding: key, as: UTF8.self), stamp: UInt64(bitPattern: stamp), writer: UInt64(bitPattern: writer),
                    version: event, holderKey: String(decoding: holderKey, as: UTF8.self), holderKeyValues: KeyCoding.decode(keeper) ?? [],
                    holderStamp: UInt64(bitPattern: holderStamp),
                    holderWriter: UInt64(bitPattern: holderWriter), label: String(decoding: label, as: UTF8.self)))
        }
        return entries.sorted { Self.precedes(($0.stamp, $0.writer, $0.key), ($1.stamp, $1.writer, $1.key)) }
    }

    /// The rule's order between two rows' latest versions: (stamp, writer) as last-writer-wins orders them,
    /// then the key's SQL text, so that even two rows one writer wrote in one millisecond have an order.
    static func precedes(_ a: (stamp: UInt64, writer: UInt64, key: String), _ b: (stamp: UInt64, writer: UInt64, key: String)) -> Bool {
        if (a.stamp, a.writer) != (b.stamp, b.writer) { return (a.stamp, a.writer) > (b.stamp, b.writer) }
        return a.key > b.key
    }

    /// Holds `version` aside (replacing what the row had here), the holder to be named by settlement.
    func hold(_ version: ChangeEvent, holder: Holder?) throws {
        try forgetValues(table: version.table, keyText: Self.keyText(version.key))
        let values = zip(version.columns, version.values).map { "\($0)=\($1.sqlLiteral)" }.joined(separator: ", ")
        let bytes = ChangeBatch(origin: version.writer, schemaHash: "", events: [version]).encoded(compress: false)
        try statement(
            "INSERT OR REPLACE INTO \(q(ChangeLogSchema.conflicts)) (table_name, losing_key, losing_stamp, losing_writer, losing_values, columns, "
                + "winning_key, winning_stamp, winning_writer, reason, version, winning_key_values) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        .run([
            .text(version.table), .text(Self.keyText(version.key)), .integer(Int64(bitPattern: version.stamp)), .integer(Int64(bitPattern: version.writer)),
            .text(values), .text(holder?.label ?? ""), .text(holder?.keyText ?? ""), .integer(Int64(bitPattern: holder?.stamp ?? 0)),
            .integer(Int64(bitPattern: holder?.writer ?? 0)), .text(Self.reason), .blob(bytes), .blob(KeyCoding.encode(holder?.key ?? [])),
        ])
    }

    static let reason = "held aside: a later write holds its UNIQUE value; placed again when the value is free"

    /// Names the row that keeps `entry` aside, when it changed.
    func name(_ holder: Holder, of entry: Entry) throws(SQLiteError) {
        guard holder.keyText != entry.holderKey || holder.stamp != entry.holderStamp || holder.writer != entry.holderWriter || holder.label != entry.label
        else { return }
        try statement(
            "UPDATE \(q(ChangeLogSchema.conflicts)) SET winning_key = ?, winning_stamp = ?, winning_writer = ?, columns = ?, winning_key_values = ? "
                + "WHERE table_name = ? AND losing_key = ?"
        )
        .run([
            .text(holder.keyText), .integer(Int64(bitPattern: holder.stamp)), .integer(Int64(bitPattern: holder.writer)), .text(holder.label),
            .blob(KeyCoding.encode(holder.key)), .text(entry.table), .text(entry.key),
        ])
    }

    /// Forgets what `table` held aside for `key` (placed again, or superseded by a newer version).
    func release(table: String, key: some Collection<SQLiteValue>) throws(SQLiteError) {
        try release(table: table, keyText: Self.keyText(key))
    }

    func release(table: String, keyText: String) throws(SQLiteError) {
        try statement("DELETE FROM \(q(ChangeLogSchema.conflicts)) WHERE table_name = ? AND losing_key = ?").run([.text(table), .text(keyText)])
        try forgetValues(table: table, keyText: keyText)
    }

    private func forgetValues(table: String, keyText: String) throws(SQLiteError) {
        try statement("DELETE FROM \(q(ChangeLogSchema.heldValues)) WHERE table_name = ? AND losing_key = ?").run([.text(table), .text(keyText)])
    }

    // MARK: finding the held-aside rows a written row concerns

    /// One UNIQUE index's terms (and whether the row is inside its condition), evaluated on the probe row and
    /// on a row of the table by key, and the collations they compare by.
    struct Signer {
        var index: UniqueIndex
        var onProbe: SQLiteStatement
        var onRow: SQLiteStatement
    }

    /// Per table: its signers, or nil when an index compares by a collation other than BINARY, NOCASE or RTRIM
    /// (its values cannot be folded here: that table is settled by checking every held-aside row).
    private var signers: [String: [Signer]?] = [:]

    func signers(of table: TableInfo) throws(SQLiteError) -> [Signer]? {
        if let cached = signers[table.name] { return cached }
        let probe = try self.probe(for: table)
        var result: [Signer]? = []
        let keyMatch = table.primaryKey.map { "\(q($0.name)) = ?" }.joined(separator: " AND ")
        for (index, _) in try indexes(of: table) {
            guard index.terms.allSatisfy({ ["BINARY", "NOCASE", "RTRIM"].contains($0.collation.uppercased()) }) else { result = nil; break }
            let terms = (index.terms.map { "(\($0.expression))" } + ["CASE WHEN \(index.condition.map { "(\($0))" } ?? "1") THEN 1 ELSE 0 END"]).joined(
                separator: ", ")
            guard let onProbe = try? database.prepare("SELECT \(terms) FROM temp.\(q(probe))"),
                let onRow = try? database.prepare("SELECT \(terms) FROM main.\(q(table.name)) WHERE \(keyMatch)")
            else { result = nil; break }
            result?.append(Signer(index: index, onProbe: onProbe, onRow: onRow))
        }
        signers[table.name] = .some(result)
        return result
    }

    /// The terms' values as the index compares them (NOCASE folds ASCII letters, RTRIM trailing spaces, an
    /// integral REAL is its INTEGER), as bytes; nil when the row is outside the condition or a term is NULL
    /// (such a row conflicts with none).
    static func signature(_ row: [SQLiteValue], _ index: UniqueIndex) -> [UInt8]? {
        guard row.count == index.terms.count + 1, row.last == .integer(1) else { return nil }
        var folded: [SQLiteValue] = []
        for (value, term) in zip(row, index.terms) {
            switch value {
            case .null: return nil
            case .real(let number) where number.rounded() == number && abs(number) < 9.0e18: folded.append(.integer(Int64(number)))
            case .text(var bytes):
                switch term.collation.uppercased() {
                case "NOCASE": bytes = bytes.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }
                case "RTRIM": while bytes.last == 0x20 { bytes.removeLast() }
                default: break
                }
                folded.append(.text(bytes))
            default: folded.append(value)
            }
        }
        return KeyCoding.encode(folded)
    }

    /// Records what the held-aside row `keyText` (its version in the probe now) wants, replacing what it wanted.
    private func recordValues(of table: TableInfo, keyText: String, signers: [Signer]) throws(SQLiteError) {
        try forgetValues(table: table.name, keyText: keyText)
        let insert = try statement("INSERT OR IGNORE INTO \(q(ChangeLogSchema.heldValues)) (table_name, index_name, value, losing_key) VALUES (?, ?, ?, ?)")
        for signer in signers {
            guard let row = try signer.onProbe.all().first, let value = Self.signature(row, signer.index) else { continue }
            try insert.run([.text(table.name), .text(signer.index.name), .blob(value), .text(keyText)])
        }
    }

    /// The held-aside rows of `table` whose status or holder the rows `touched` (written, deleted, moved aside
    /// or placed in this transaction) may have changed: the held-aside row itself, those it held aside (it was
    /// their holder), and those wanting a value it holds now.
    func concerned(in table: TableInfo, touched: [[SQLiteValue]], signers: [Signer]) throws(SQLiteError) -> Set<String> {
        var keys: Set<String> = []
        // Two lookups, not one with OR: SQLite does not use two indexes for an OR on a WITHOUT ROWID table.
        let byKey = try statement("SELECT losing_key FROM \(q(ChangeLogSchema.conflicts)) WHERE table_name = ? AND losing_key = ?")
        let byHolder = try statement("SELECT losing_key FROM \(q(ChangeLogSchema.conflicts)) WHERE table_name = ? AND winning_key = ?")
        let byValue = try statement("SELECT losing_key FROM \(q(ChangeLogSchema.heldValues)) WHERE table_name = ? AND index_name = ? AND value = ?")
        func collect(_ rows: [[SQLiteValue]]) {
            for row in rows { if case .text(let bytes) = row.first { keys.insert(String(decoding: bytes, as: UTF8.self)) } }
        }
        for key in Set(touched) {
            let text = Self.keyText(key)
            collect(try byKey.all([.text(table.name), .text(text)]))
            collect(try byHolder.all([.text(table.name), .text(text)]))
            for signer in signers {
                guard let row = try signer.onRow.all(key).first, let value = Self.signature(row, signer.index) else { continue }
                collect(try byValue.all([.text(table.name), .text(signer.index.name), .blob(value)]))
            }
        }
        return keys
    }

    // MARK: finding holders

    /// The rows of `table` (other than `key`'s) that hold a UNIQUE value of the row `columns`/`values` would
    /// write — `defaults` giving the columns it lacks — through each UNIQUE index's own definition.
    /// With `recording`, what the held-aside row of that key wants is recorded too (`concerned` finds it).
    func holders(
        in table: TableInfo, key: [SQLiteValue], columns: [String], values: [SQLiteValue], defaults: [(name: String, sql: String)],
        recording keyText: String? = nil
    ) throws -> [Holder] {
        let indexes = try self.indexes(of: table)
        guard !indexes.isEmpty else { return [] }
        let probe = try self.probe(for: table)
        try statement("DELETE FROM temp.\(q(probe))").run()
        let shape = [table.name] + columns + defaults.map(\.name)
        let insert: SQLiteStatement
        if let cached = probeInserts[shape] {
            insert = cached
        } else {
            let names = (columns + defaults.map(\.name)).map(q).joined(separator: ", ")
            let placeholders = (Array(repeating: "?", count: columns.count) + defaults.map(\.sql)).joined(separator: ", ")
            insert = try database.prepare("INSERT INTO temp.\(q(probe)) (\(names)) VALUES (\(placeholders))")
            probeInserts[shape] = insert
        }
        try insert.run(values)
        if let keyText, let signers = try signers(of: table) { try recordValues(of: table, keyText: keyText, signers: signers) }
        var holders: [Holder] = []
        let keyNames = table.primaryKey.map(\.name)
        for (index, query) in indexes {
            for row in try query.all(key) {
                let holderKey = Array(row.prefix(keyNames.count))
                let (stamp, writer) = try clock(of: table, key: holderKey)
                holders.append(Holder(key: holderKey, stamp: stamp, writer: writer, label: index.label))
            }
        }
        try statement("DELETE FROM temp.\(q(probe))").run()
        return holders
    }

    /// A row's (stamp, writer); (0, 0) for a row without a row clock (it loses to every version).
    func clock(of table: TableInfo, key: [SQLiteValue]) throws(SQLiteError) -> (UInt64, UInt64) {
        let keyMatch = table.primaryKey.map { "\(q($0.name)) = ?" }.joined(separator: " AND ")
        let row = try statement(
            "SELECT \(q(ChangeLogSchema.stampColumn)), \(q(ChangeLogSchema.nodeColumn)), \(q(ChangeLogSchema.deletedColumn)) FROM \(q(ChangeLogSchema.changeLog(of: table.name))) WHERE \(keyMatch)"
        )
        .all(key).first
        guard let row, case .integer(let stamp) = row[0], case .integer(let writer) = row[1] else { return (0, 0) }
        return (UInt64(bitPattern: stamp), UInt64(bitPattern: writer))
    }

    /// Whether the row `key` is in its table and its row clock names exactly (stamp, writer).
    func holds(_ table: TableInfo, key: [SQLiteValue], stamp: UInt64, writer: UInt64) throws(SQLiteError) -> Bool {
        guard !key.isEmpty, try clock(of: table, key: key) == (stamp, writer) else { return false }
        let keyMatch = table.primaryKey.map { "\(q($0.name)) = ?" }.joined(separator: " AND ")
        return try !statement("SELECT 1 FROM \(q(table.name)) WHERE \(keyMatch)").all(key).isEmpty
    }

    /// Whether the row clock still names exactly this version, alive (not a newer version, not a delete).
    func isLatest(_ entry: Entry, of table: TableInfo) throws(SQLiteError) -> Bool {
        let keyMatch = table.primaryKey.map { "\(q($0.name)) = ?" }.joined(separator: " AND ")
        let row = try statement(
            "SELECT \(q(ChangeLogSchema.stampColumn)), \(q(ChangeLogSchema.nodeColumn)), \(q(ChangeLogSchema.deletedColumn)) FROM \(q(ChangeLogSchema.changeLog(of: table.name))) WHERE \(keyMatch)"
        )
        .all(Array(entry.version.key)).first
        return row == [.integer(Int64(bitPattern: entry.stamp)), .integer(Int64(bitPattern: entry.writer)), .integer(0)]
    }

    /// The row as the table holds it now, as a version with its row clock (columns as capture sends them).
    func version(of table: TableInfo, key: [SQLiteValue], stamp: UInt64, writer: UInt64) throws(SQLiteError) -> ChangeEvent? {
        let keyNames = table.primaryKey.map(\.name)
        let others = table.columns.filter { $0.primaryKeyPosition == 0 }.map(\.name)
        let keyMatch = keyNames.map { "\(q($0)) = ?" }.joined(separator: " AND ")
        guard let row = try statement("SELECT \((keyNames + others).map(q).joined(separator: ", ")) FROM \(q(table.name)) WHERE \(keyMatch)").all(key).first
        else { return nil }
        return ChangeEvent(
            changeID: 0, table: table.name, operation: .upsert, stamp: stamp, writer: writer, columns: keyNames + others, values: row, keyCount: keyNames.count)
    }

    private func indexes(of table: TableInfo) throws(SQLiteError) -> [(index: UniqueIndex, holders: SQLiteStatement)] {
        if let cached = indexes[table.name] { return cached }
        let probe = try self.probe(for: table)
        let keyNames = table.primaryKey.map(\.name)
        var prepared: [(index: UniqueIndex, holders: SQLiteStatement)] = []
        for index in try UniqueIndex.of(table: table.name, in: database) {
            // An index whose text does not evaluate on a row (it should: SQLite wrote it) is left to SQLite's
            // refusal — and said, once: rows it refuses stay held aside.
            do {
                prepared.append((index, try database.prepare(index.holdersQuery(table: table.name, keyNames: keyNames, probe: probe))))
            } catch {
                if unreadable.insert(table.name + "." + index.name).inserted { newlyUnreadable.append("\(table.name).\(index.name): \(error)") }
            }
        }
        indexes[table.name] = prepared
        return prepared
    }

    /// A temporary table defined as `table` is (its `CREATE TABLE` text under another name: the same columns,
    /// affinities, collations, defaults and generated columns), holding the one row being placed, so that the
    /// index expressions and conditions evaluate on it exactly as on a row of the table. A definition that
    /// cannot be copied falls back to the columns and affinities alone.
    private func probe(for table: TableInfo) throws(SQLiteError) -> String {
        if let name = probes[table.name] { return name }
        let name = ChangeLogSchema.prefix + "probe_\(probes.count + 1)"
        try database.execute("DROP TABLE IF EXISTS temp.\(q(name))")
        let sql = try statement("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?").all([.text(table.name)]).first?.first
        var cloned = false
        if case .text(let bytes)? = sql, let definition = IndexDefinition.tableBody(String(decoding: bytes, as: UTF8.self)) {
            cloned = (try? database.execute("CREATE TEMP TABLE \(q(name)) \(definition)")) != nil
        }
        if !cloned { try database.execute("CREATE TEMP TABLE \(q(name)) AS SELECT * FROM main.\(q(table.name)) WHERE 0") }
        probes[table.name] = name
        return name
    }
}
