import Foundation
import TestSupport
import Testing

@testable import SQLiteKit

/// The connection's contract, on real files: it never creates a database, refuses what is not one with the
/// path in the message, keeps a transaction's writes all or none, and the statement cache prepares once.
@Suite struct SQLiteDatabaseTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    func created(_ name: String, _ sql: String) throws -> String {
        let path = directory.path + "/" + name
        _ = try runCommand("/usr/bin/sqlite3", [path, sql])
        return path
    }

    @Test func aMissingFileIsAnErrorNamingItAndIsNotCreated() throws {
        let path = directory.path + "/absent.db"
        #expect {
            _ = try SQLiteDatabase(existingPath: path)
        } throws: { error in
            "\(error)".contains(path)
        }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aFileThatIsNotADatabaseIsRefusedAtOpen() throws {
        let path = directory.path + "/not-a-database.db"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(String(repeating: "not sqlite ", count: 1000).utf8)))
        #expect(throws: SQLiteError.self) { _ = try SQLiteDatabase(existingPath: path) }
    }

    @Test func aTransactionThatThrowsLeavesNothingBehind() throws {
        let path = try created("t.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        let database = try SQLiteDatabase(existingPath: path)
        #expect(throws: SQLiteError.self) {
            try database.transaction { () throws(SQLiteError) in
                try database.execute("INSERT INTO t VALUES (1, 'a')")
                try database.execute("INSERT INTO t VALUES (1, 'duplicate key')")
            }
        }
        #expect(try database.scalarInteger("SELECT count(*) FROM t") == 0)
        try database.transaction { () throws(SQLiteError) in try database.execute("INSERT INTO t VALUES (2, 'b')") }
        let other = try runCommand("/usr/bin/sqlite3", [path, "SELECT v FROM t"]).output
        #expect(other.trimmingCharacters(in: .whitespacesAndNewlines) == "b")
    }

    @Test func theStatementCachePreparesEachTextOnceUntilCleared() throws {
        let path = try created("c.db", "CREATE TABLE t (id INTEGER PRIMARY KEY)")
        let database = try SQLiteDatabase(existingPath: path)
        let cache = StatementCache(database)
        let first = try cache("INSERT INTO t VALUES (?)")
        #expect(try cache("INSERT INTO t VALUES (?)") === first)
        try first.run([.integer(1)])
        try first.run([.integer(2)])
        cache.removeAll()
        #expect(try cache("INSERT INTO t VALUES (?)") !== first)
        #expect(try database.scalarInteger("SELECT count(*) FROM t") == 2)
    }
}
