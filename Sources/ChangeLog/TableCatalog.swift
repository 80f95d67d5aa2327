import SQLiteKit

/// A user table as replication sees it.
public struct TableInfo: Equatable, Sendable {
    public struct Column: Equatable, Sendable {
        public var name: String
        public var declaredType: String
        public var notNull: Bool
        /// 1-based position in the primary key; 0 when not part of it.
        public var primaryKeyPosition: Int
        public var collation: String
        /// The declared DEFAULT as SQL text (`pragma_table_info.dflt_value`), nil when none (NULL).
        public var defaultSQL: String? = nil
    }

    public var name: String
    /// Every column an event carries: all but generated ones (those are computed on each node).
    public var columns: [Column] { didSet { primaryKey = Self.key(of: columns) } }
    public var withoutRowID: Bool
    /// A rowid table whose primary key has an index of its own (`pragma_index_list` origin `pk`): its key
    /// is not the rowid, even when it is one INTEGER column (`INTEGER PRIMARY KEY DESC` is no rowid alias,
    /// and its key can be NULL).
    public var keyIndexed = false

    /// Primary-key columns in key order. Kept, not computed at each use: the capturer and the applier ask
    /// for it per row (it was ~8,000 instructions a row in all, `benchmarks/pipeline-cost.sh`).
    public private(set) var primaryKey: [Column]

    public init(name: String, columns: [Column], withoutRowID: Bool, keyIndexed: Bool = false) {
        self.name = name
        self.columns = columns
        self.withoutRowID = withoutRowID
        self.keyIndexed = keyIndexed
        primaryKey = Self.key(of: columns)
    }

    private static func key(of columns: [Column]) -> [Column] {
        columns.filter { $0.primaryKeyPosition > 0 }.sorted { $0.primaryKeyPosition < $1.primaryKeyPosition }
    }

    /// Key columns that can hold NULL: SQLite allows NULL in a rowid table's primary key unless it is
    /// declared NOT NULL or is the INTEGER PRIMARY KEY that is the rowid itself (not `INTEGER PRIMARY KEY
    /// DESC`: that one has an index of its own, `keyIndexed`). Rows with a NULL key name no row on another
    /// node (NULLs are all distinct), so they are not captured.
    public var nullableKeyColumns: [Column] {
        let key = primaryKey
        if !withoutRowID && !keyIndexed && key.count == 1 && key[0].declaredType.uppercased() == "INTEGER" { return [] }
        return key.filter { !$0.notNull && !withoutRowID }
    }
}

/// What the capturer decided about each table of the database.
public struct TableCatalog: Equatable, Sendable {
    public var replicated: [TableInfo]
    /// Tables that are not replicated, with the reason a person can act on.
    public var refused: [(name: String, reason: String)]

    public static func == (lhs: TableCatalog, rhs: TableCatalog) -> Bool {
        lhs.replicated == rhs.replicated && lhs.refused.map(\.name) == rhs.refused.map(\.name)
    }

    public func table(named name: String) -> TableInfo? { replicated.first { $0.name == name } }

    /// Collations every SQLite connection has; an application-defined one exists only in the application.
    static let builtInCollations: Set<String> = ["BINARY", "NOCASE", "RTRIM"]

    /// Reads the schema. Virtual tables (SQLite cannot put triggers on them), their shadow tables, and
    /// tables without a PRIMARY KEY (a rowid is not the same row on every node, and VACUUM renumbers it)
    /// are refused; everything else, rowid or WITHOUT ROWID, replicates.
    public static func read(_ database: SQLiteDatabase) throws(SQLiteError) -> TableCatalog {
        var replicated: [TableInfo] = []
        var refused: [(String, String)] = []
        let list = try database.prepare("SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main' ORDER BY name").all()
        for row in list {
            guard case .text(let nameBytes) = row[0], case .text(let typeBytes) = row[1] else { continue }
            let name = String(decoding: nameBytes, as: UTF8.self)
            let type = String(decoding: typeBytes, as: UTF8.self)
            if name.hasPrefix("sqlite_") || name.hasPrefix(HarmonyLiteObjects.prefix) { continue }
            switch type {
            case "virtual":
                refused.append((name, "virtual table: SQLite cannot put triggers on it, so its writes cannot be captured"))
            case "shadow":
                refused.append((name, "shadow table of a virtual table: it follows its virtual table, which is not replicated"))
            case "table":
                let info = try readTable(name, withoutRowID: row[2] == .integer(1), database: database)
                if info.primaryKey.isEmpty {
                    refused.append(
                        (
                            name,
                            "no PRIMARY KEY: a rowid does not name the same row on every node (and VACUUM renumbers it); add a primary key to replicate this table"
                        ))
                } else if let custom = info.primaryKey.first(where: { !Self.builtInCollations.contains($0.collation.uppercased()) }) {
                    refused.append(
                        (
                            name,
                            "its key column \(custom.name) uses the collation \(custom.collation), which only the application defines: rows cannot be matched by key outside it; use BINARY, NOCASE or RTRIM to replicate this table"
                        ))
                } else {
                    replicated.append(info)
                }
            default:
                continue
            }
        }
        return TableCatalog(replicated: replicated, refused: refused)
    }

    private static func readTable(_ name: String, withoutRowID: Bool, database: SQLiteDatabase) throws(SQLiteError) -> TableInfo {
        // table_xinfo: hidden 2 and 3 are generated columns, which are never written.
        let rows = try database.prepare("SELECT name, type, \"notnull\", pk, hidden, dflt_value FROM pragma_table_xinfo(?) ORDER BY cid").all([.text(name)])
        var columns: [TableInfo.Column] = []
        for row in rows {
            guard case .text(let columnName) = row[0], case .integer(let hidden) = row[4], hidden == 0 else { continue }
            let column = String(decoding: columnName, as: UTF8.self)
            var declared = ""
            if case .text(let type) = row[1] { declared = String(decoding: type, as: UTF8.self) }
            let metadata = try database.columnMetadata(table: name, column: column)
            columns.append(
                TableInfo.Column(
                    name: column,
                    declaredType: declared,
                    notNull: row[2] == .integer(1),
                    primaryKeyPosition: { if case .integer(let p) = row[3] { Int(p) } else { 0 } }(),
                    collation: metadata.collation,
                    defaultSQL: { if case .text(let text) = row[5] { String(decoding: text, as: UTF8.self) } else { nil } }()
                ))
        }
        var table = TableInfo(name: name, columns: columns, withoutRowID: withoutRowID)
        if !withoutRowID {
            table.keyIndexed = !(try database.prepare("SELECT 1 FROM pragma_index_list(?) WHERE origin = 'pk'").all([.text(name)]).isEmpty)
        }
        return table
    }
}
