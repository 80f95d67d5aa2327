import CSQLite

/// A prepared statement: bind typed values, step, read typed columns. Finalized on deinit.
public final class SQLiteStatement {
    private let handle: OpaquePointer
    private let database: SQLiteDatabase

    init(database: SQLiteDatabase, sql: String) throws(SQLiteError) {
        var statement: OpaquePointer?
        let status = sqlite3_prepare_v3(database.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard status == SQLITE_OK, let statement else {
            throw SQLiteError(code: status, message: "\(database.lastErrorMessage) in: \(sql)")
        }
        handle = statement
        self.database = database
    }

    deinit { sqlite3_finalize(handle) }

    public var columnCount: Int { Int(sqlite3_column_count(handle)) }

    public func columnName(_ index: Int) -> String { String(cString: sqlite3_column_name(handle, Int32(index))) }

    /// Resets the statement and binds `values` to parameters 1...n.
    public func bind(_ values: [SQLiteValue]) throws(SQLiteError) {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .null: status = sqlite3_bind_null(handle, index)
            case .integer(let v): status = sqlite3_bind_int64(handle, index, v)
            case .real(let v): status = sqlite3_bind_double(handle, index, v)
            case .text(let bytes) where bytes.isEmpty:
                status = sqlite3_bind_text(handle, index, "", 0, SQLITE_TRANSIENT_POINTER)
            case .text(let bytes):
                status = bytes.withUnsafeBytes {
                    sqlite3_bind_text64(
                        handle, index, $0.baseAddress!.assumingMemoryBound(to: CChar.self), UInt64($0.count),
                        SQLITE_TRANSIENT_POINTER, UInt8(SQLITE_UTF8))
                }
            case .blob(let bytes) where bytes.isEmpty:
                // A NULL pointer would bind NULL; an empty blob is a zero-length blob.
                status = sqlite3_bind_zeroblob(handle, index, 0)
            case .blob(let bytes):
                status = bytes.withUnsafeBytes {
                    sqlite3_bind_blob64(handle, index, $0.baseAddress, UInt64($0.count), SQLITE_TRANSIENT_POINTER)
                }
            }
            guard status == SQLITE_OK else { throw SQLiteError(code: status, message: database.lastErrorMessage) }
        }
    }

    /// Advances; true when a row is available.
    @discardableResult
    public func step() throws(SQLiteError) -> Bool {
        let status = sqlite3_step(handle)
        switch status {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            sqlite3_reset(handle)
            throw SQLiteError(code: status, message: database.lastErrorMessage)
        }
    }

    public func column(_ index: Int) -> SQLiteValue {
        let i = Int32(index)
        switch sqlite3_column_type(handle, i) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(handle, i))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(handle, i))
        case SQLITE_TEXT:
            let count = Int(sqlite3_column_bytes(handle, i))
            guard let pointer = sqlite3_column_text(handle, i) else { return .text([]) }
            return .text(Array(UnsafeBufferPointer(start: pointer, count: count)))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(handle, i))
            guard count > 0, let pointer = sqlite3_column_blob(handle, i) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: pointer, count: count)))
        default: return .null
        }
    }

    public var row: [SQLiteValue] { (0..<columnCount).map(column) }

    /// Binds, runs to completion, and returns every row.
    public func all(_ values: [SQLiteValue] = []) throws(SQLiteError) -> [[SQLiteValue]] {
        try bind(values)
        var rows: [[SQLiteValue]] = []
        while try step() { rows.append(row) }
        sqlite3_reset(handle)
        return rows
    }

    /// The first row only (a point lookup: no array of rows is built).
    public func first(_ values: [SQLiteValue] = []) throws(SQLiteError) -> [SQLiteValue]? {
        try bind(values)
        defer { sqlite3_reset(handle) }
        return try step() ? row : nil
    }

    /// Whether the query returns a row (its columns are not read).
    public func hasRow(_ values: [SQLiteValue] = []) throws(SQLiteError) -> Bool {
        try bind(values)
        defer { sqlite3_reset(handle) }
        return try step()
    }

    /// Binds and runs a statement that returns no rows.
    public func run(_ values: [SQLiteValue] = []) throws(SQLiteError) {
        try bind(values)
        while try step() {}
        sqlite3_reset(handle)
    }
}

/// SQLite's SQLITE_TRANSIENT (-1 as a destructor): copy the bound bytes. A C macro Swift cannot import.
nonisolated(unsafe) let SQLITE_TRANSIENT_POINTER = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
