import CSQLite

/// One SQLite connection. Thin: open, execute, read rows. Not shared between threads.
public final class SQLiteDatabase {
    let handle: OpaquePointer
    public let path: String
    /// What `waitWhenBusy` installed: SQLite holds only a pointer to it.
    var busyWaiter: AnyObject?

    /// Opens an existing database for reading and writing; never creates one (HarmonyLite replicates
    /// databases that exist).
    public convenience init(existingPath path: String, busyTimeoutMilliseconds: Int32 = 5000) throws(SQLiteError) {
        try self.init(path: path, flags: SQLITE_OPEN_READWRITE, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
    }

    /// Opens an existing database for reading only: closing it is no write to the database file (a
    /// watcher of the file's writes, the capturer's, is not woken by a reader).
    public convenience init(readOnlyPath path: String, busyTimeoutMilliseconds: Int32 = 5000) throws(SQLiteError) {
        try self.init(path: path, flags: SQLITE_OPEN_READONLY, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
    }

    /// Opens an existing database read-only as immutable (SQLite's `immutable=1` URI parameter): no lock,
    /// no `-shm` or `-wal` file is created, nothing on disk changes. Only for a database nothing else has
    /// open (no `-wal`/`-shm` beside it): changes another connection makes are not seen.
    public convenience init(immutablePath path: String) throws(SQLiteError) {
        try self.init(
            path: path, flags: SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, busyTimeoutMilliseconds: 0,
            openName: "file:" + Self.uriEscaped(path) + "?immutable=1")
    }

    /// `path` for a `file:` URI: every byte but unreserved ones and `/` percent-encoded.
    static func uriEscaped(_ path: String) -> String {
        var out = ""
        for byte in path.utf8 {
            let c = Character(Unicode.Scalar(byte))
            if byte < 0x80, c.isLetter || c.isNumber || "-._~/".contains(c) {
                out.append(c)
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return out
    }

    /// Opens a file that came from outside (a downloaded snapshot) for reading and writing, defensively,
    /// before its schema is read: `SQLITE_DBCONFIG_DEFENSIVE` (no `writable_schema`, no writes to shadow
    /// tables through SQL), `trusted_schema = OFF` (its views and triggers may call only innocuous
    /// functions), `cell_size_check = ON` (corrupt pages are errors, not undefined reads) and no mmap.
    ///
    /// `trustingSchema`: with `trusted_schema = ON` (the rest as above), for a file whose schema SQLite 3.40
    /// refuses to read otherwise (`unsafe use of json_extract()` in an index or generated column: the JSON
    /// functions are not marked innocuous before 3.45). Only for a file already authenticated and whose
    /// foreign code (triggers, views) is dropped before it is used (`SnapshotSchemaGuard`).
    public convenience init(untrustedPath path: String, busyTimeoutMilliseconds: Int32 = 5000, trustingSchema: Bool = false) throws(SQLiteError) {
        try self.init(
            path: path, flags: SQLITE_OPEN_READWRITE, busyTimeoutMilliseconds: busyTimeoutMilliseconds, defensive: true, trustingSchema: trustingSchema)
    }

    private init(
        path: String, flags: Int32, busyTimeoutMilliseconds: Int32, defensive: Bool = false, trustingSchema: Bool = false,
        openName: String? = nil
    ) throws(SQLiteError) {
        var pointer: OpaquePointer?
        let flags = flags | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(openName ?? path, &pointer, flags, nil)
        guard status == SQLITE_OK, let pointer else {
            let message = pointer.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(pointer)
            throw SQLiteError(code: status, message: "cannot open \(path): \(message)")
        }
        handle = pointer
        self.path = path
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
        if defensive {
            let code = hl_sqlite3_defensive(handle, 1)
            guard code == SQLITE_OK else { throw SQLiteError(code: code, message: "cannot open \(path) defensively") }
            try execute("PRAGMA trusted_schema = \(trustingSchema ? "ON" : "OFF"); PRAGMA cell_size_check = ON; PRAGMA mmap_size = 0")
        }
        // Fails here, with a clear message, when the file is not a database at all.
        _ = try scalarInteger("PRAGMA schema_version")
    }

    deinit { sqlite3_close_v2(handle) }

    /// The replica role (as PostgreSQL's `session_replication_role = replica`): on this connection no
    /// trigger fires (neither the application's nor our capture triggers) and no foreign-key action runs.
    /// Replicated rows carry those effects already: they were captured on the origin as rows of their own.
    public func enterReplicaRole() throws(SQLiteError) {
        let code = hl_sqlite3_enable_triggers(handle, 0)
        guard code == SQLITE_OK else { throw SQLiteError(code: code, message: "cannot turn triggers off on this connection") }
        try execute("PRAGMA foreign_keys = OFF")
    }

    public func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        try SQLiteStatement(database: self, sql: sql)
    }

    var lastErrorMessage: String { String(cString: sqlite3_errmsg(handle)) }

    /// Changes made by the last statement (not counting triggers).
    public var changes: Int { Int(sqlite3_changes64(handle)) }

    /// Declared type, collation, not-null, primary-key membership and autoincrement of a column, as
    /// sqlite3_table_column_metadata reports them.
    public func columnMetadata(table: String, column: String) throws(SQLiteError) -> ColumnMetadata {
        var type: UnsafePointer<CChar>?
        var collation: UnsafePointer<CChar>?
        var notNull: Int32 = 0
        var primaryKey: Int32 = 0
        var autoincrement: Int32 = 0
        let status = sqlite3_table_column_metadata(handle, "main", table, column, &type, &collation, &notNull, &primaryKey, &autoincrement)
        guard status == SQLITE_OK else { throw SQLiteError(code: status, message: lastErrorMessage) }
        return ColumnMetadata(
            declaredType: type.map { String(cString: $0) } ?? "",
            collation: collation.map { String(cString: $0) } ?? "BINARY",
            notNull: notNull != 0,
            autoincrement: autoincrement != 0
        )
    }

    public func execute(_ sql: String) throws(SQLiteError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        guard status == SQLITE_OK else {
            let message = errorMessage.map { String(cString: $0) } ?? "error \(status)"
            sqlite3_free(errorMessage)
            throw SQLiteError(code: status, message: message)
        }
    }

    /// Runs `body` in a write transaction (`BEGIN IMMEDIATE`): committed when it returns, rolled back
    /// when it throws.
    public func transaction<T>(_ body: () throws(SQLiteError) -> T) throws(SQLiteError) -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// All rows of a query, every column as text (NULL as nil).
    public func rows(_ sql: String) throws(SQLiteError) -> [[String?]] {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw SQLiteError(code: sqlite3_errcode(handle), message: String(cString: sqlite3_errmsg(handle)))
        }
        defer { sqlite3_finalize(statement) }
        var result: [[String?]] = []
        while true {
            let status = sqlite3_step(statement)
            if status == SQLITE_DONE { return result }
            guard status == SQLITE_ROW else {
                throw SQLiteError(code: status, message: String(cString: sqlite3_errmsg(handle)))
            }
            var row: [String?] = []
            for column in 0..<sqlite3_column_count(statement) {
                row.append(sqlite3_column_text(statement, column).map { String(cString: $0) })
            }
            result.append(row)
        }
    }

    public func scalarInteger(_ sql: String) throws(SQLiteError) -> Int64 {
        Int64(try rows(sql).first?.first??.description ?? "0") ?? 0
    }
}

public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    public var code: Int32
    public var message: String

    public init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "SQLite error \(code): \(message)" }
}

public struct ColumnMetadata: Equatable, Sendable {
    public var declaredType: String
    public var collation: String
    public var notNull: Bool
    public var autoincrement: Bool
}

extension SQLiteDatabase {
    /// Replaces this database's whole content with `source`'s through SQLite's online backup API, holding
    /// this database's write lock from before `whileLocked` runs until the content is replaced: other
    /// connections see the old content or the new, never a mix, and no writer commits in between. So what
    /// `whileLocked` reads of this database (through another connection: readers of a WAL database are not
    /// held up) is final, and what it writes into `source` is what is copied. If it throws, nothing is
    /// copied and the lock is released. `progress` gets (pages copied, pages in all) after every 1024 pages:
    /// the write lock stays held between the steps.
    public func replaceContent(
        with source: SQLiteDatabase, whileLocked: () throws -> Void = {},
        progress: (_ copied: Int64, _ total: Int64) -> Void = { _, _ in }
    ) throws {
        guard let backup = sqlite3_backup_init(handle, "main", source.handle, "main") else {
            throw SQLiteError(code: sqlite3_errcode(handle), message: "cannot start the backup into \(path): \(lastErrorMessage)")
        }
        // The first step takes this database's write lock (waiting like any writer); copying no page yet.
        let locked = sqlite3_backup_step(backup, 0)
        guard locked == SQLITE_OK else {
            sqlite3_backup_finish(backup)
            throw SQLiteError(code: locked, message: "cannot lock \(path) to replace its content: \(lastErrorMessage)")
        }
        do {
            try whileLocked()
        } catch {
            sqlite3_backup_finish(backup)
            throw error
        }
        var stepped = SQLITE_OK
        while stepped == SQLITE_OK {
            stepped = sqlite3_backup_step(backup, 1024)
            let total = Int64(sqlite3_backup_pagecount(backup))
            progress(total - Int64(sqlite3_backup_remaining(backup)), total)
        }
        let finished = sqlite3_backup_finish(backup)
        guard stepped == SQLITE_DONE, finished == SQLITE_OK else {
            throw SQLiteError(code: stepped == SQLITE_DONE ? finished : stepped, message: "copying \(source.path) into \(path): \(lastErrorMessage)")
        }
    }
}
