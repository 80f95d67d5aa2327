/// Prepared statements by their SQL text, prepared once per connection: building and preparing SQL for every
/// row cost more than running it. `removeAll` after a schema change (a statement may name what is gone).
public final class StatementCache {
    private let database: SQLiteDatabase
    private var statements: [String: SQLiteStatement] = [:]

    public init(_ database: SQLiteDatabase) { self.database = database }

    public func callAsFunction(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let cached = statements[sql] { return cached }
        let prepared = try database.prepare(sql)
        statements[sql] = prepared
        return prepared
    }

    public func removeAll() { statements.removeAll() }
}
