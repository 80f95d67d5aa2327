import TestSupport
import Testing

@testable import SQLiteKit

/// `SQLiteDatabase.countWaits`: the benchmark's application counts its busy waits and checkpoints with
/// SQLite's default behaviour kept. Real files, two connections.
@Suite struct ApplicationWaitsTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    @Test func theDelaysAreSQLitesDefaultSchedule() {
        let schedule = (0..<14).map { ApplicationWaits.delay(afterTries: $0, timeoutMilliseconds: 5000) }
        #expect(schedule == [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100, 100, 100])
        // The last sleep is cut to the timeout, then it gives up.
        #expect(ApplicationWaits.delay(afterTries: 3, timeoutMilliseconds: 10) == 2)
        #expect(ApplicationWaits.delay(afterTries: 4, timeoutMilliseconds: 10) == nil)
        #expect(ApplicationWaits.delay(afterTries: 0, timeoutMilliseconds: 0) == nil)
    }

    @Test func aWriteThatFindsTheLockTakenSleepsAndIsCounted() throws {
        let path = directory.path + "/w.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY);")
        let holder = try SQLiteDatabase(existingPath: path)
        let application = try SQLiteDatabase(existingPath: path)
        let waits = application.countWaits(timeoutMilliseconds: 20)
        try holder.execute("BEGIN IMMEDIATE")
        let error = #expect(throws: SQLiteError.self) { try application.execute("INSERT INTO t VALUES (1)") }
        #expect(error?.code == 5)  // SQLITE_BUSY, after 1 + 2 + 5 + 10 + 2 ms asleep
        #expect(waits.busyRequests == 1)
        #expect(waits.busyWaits == 5)
        #expect(waits.busyMicroseconds >= 20_000)
        try holder.execute("COMMIT")
        try application.execute("INSERT INTO t VALUES (1)")
        #expect(waits.busyRequests == 1)
    }

    @Test func commitsPastTheThresholdCheckpointAsSQLitesOwnHookDoes() throws {
        let path = directory.path + "/c.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB);")
        let application = try SQLiteDatabase(existingPath: path)
        let waits = application.countWaits(autocheckpointFrames: 8)
        for id in 1...40 { try application.execute("INSERT INTO t VALUES (\(id), zeroblob(3000))") }
        #expect(waits.checkpoints > 0)
        // Checkpointed: the WAL started again, so it holds far fewer frames than the 40 commits wrote.
        let frames = try application.rows("PRAGMA wal_checkpoint(PASSIVE)")
        #expect(Int(frames.first?[1] ?? "") ?? 1000 < 40)
        #expect(try application.scalarInteger("SELECT count(*) FROM t") == 40)
    }
}
