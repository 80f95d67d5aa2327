import TestSupport
import Testing

@testable import SQLiteKit

/// `SQLiteDatabase.waitWhenBusy`: the capturer keeps noticing schema changes while it waits for the write
/// lock. Real files, two connections.
@Suite struct BusyWaitingTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    @Test func whileWaitingRunsBetweenTriesUntilTheLockIsFree() throws {
        let path = directory.path + "/b.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY);")
        let holder = try SQLiteDatabase(existingPath: path)
        let waiter = try SQLiteDatabase(existingPath: path)
        try holder.execute("BEGIN IMMEDIATE")
        var calls = 0
        waiter.waitWhenBusy(timeoutMilliseconds: 5000) {
            calls += 1
            // Another connection is fine to use here: the holder lets go after a few tries.
            if calls == 3 { try? holder.execute("COMMIT") }
            return true
        }
        try waiter.execute("BEGIN IMMEDIATE; INSERT INTO t VALUES (1); COMMIT;")
        #expect(calls == 3)
        #expect(try waiter.scalarInteger("SELECT count(*) FROM t") == 1)
    }

    @Test func itGivesUpAfterTheTimeoutAsTheBusyTimeoutDid() throws {
        let path = directory.path + "/c.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY);")
        let holder = try SQLiteDatabase(existingPath: path)
        let waiter = try SQLiteDatabase(existingPath: path)
        try holder.execute("BEGIN IMMEDIATE")
        var calls = 0
        waiter.waitWhenBusy(timeoutMilliseconds: 50) {
            calls += 1; return true
        }
        let error = #expect(throws: SQLiteError.self) { try waiter.execute("BEGIN IMMEDIATE") }
        #expect(error?.code == 5)  // SQLITE_BUSY
        #expect(calls > 0)
        try holder.execute("COMMIT")
    }

    @Test func withoutATimeoutItWaitsUntilWhileWaitingSaysStop() throws {
        let path = directory.path + "/d.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY);")
        let holder = try SQLiteDatabase(existingPath: path)
        let waiter = try SQLiteDatabase(existingPath: path)
        try holder.execute("BEGIN IMMEDIATE")
        var calls = 0
        // Far more tries than any timeout of the old busy handler would have allowed (10 ms apart at most).
        waiter.waitWhenBusy(timeoutMilliseconds: nil) {
            calls += 1; return calls < 300
        }
        let error = #expect(throws: SQLiteError.self) { try waiter.execute("BEGIN IMMEDIATE") }
        #expect(error?.code == 5)  // SQLITE_BUSY: whileWaiting said stop (a worker asked to stop)
        #expect(calls == 300)
        try holder.execute("COMMIT")
    }
}
