import TestSupport

@testable import ChangeLog
@testable import SQLiteKit

/// A suite with a temporary directory and one database in it with our change log installed, written by the
/// application (the sqlite3 shell) and stamped as the capturer and the applier stamp.
protocol InstalledDatabaseFixture {
    var directory: TemporaryDirectory { get }
}

extension InstalledDatabaseFixture {
    /// `a.db` made with `schema` (WAL), installed as node 1.
    func installed(_ schema: String) throws -> (path: String, db: SQLiteDatabase, installation: ChangeLogInstallation) {
        let path = directory.path + "/a.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL;" + schema)
        let db = try SQLiteDatabase(existingPath: path)
        return (path, db, try ChangeLogInstaller.install(in: db, node: 1))
    }

    /// Runs `sql` as the application does (another process, `trusted_schema` off); its output.
    @discardableResult
    func app(_ path: String, _ sql: String) throws -> String {
        let result = try runCommand("/usr/bin/sqlite3", [path, "PRAGMA trusted_schema=OFF;" + sql])
        guard result.status == 0 else { throw TestFailure("sqlite3: \(result.output)") }
        return result.output
    }

    /// Stamps what is pending, in a transaction of its own.
    func materialize(_ db: SQLiteDatabase) throws {
        _ = try db.transaction { () throws(SQLiteError) -> Int in try StampMaterializer(database: db).materialize() }
    }
}
