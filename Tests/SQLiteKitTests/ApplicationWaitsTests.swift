import TestSupport
import Testing

@testable import SQLiteKit

/// `SQLiteDatabase.countWaits`: the benchmark's application counts its busy waits and checkpoints with
/// SQLite's default behaviour kept; the capturer's checkpoints (`WALIndex`, `checkpoint`) spare it those.
/// Real files, several connections.
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

    // `WALIndex.frames` and `SQLiteDatabase.checkpoint`: the capturer's checkpointer keeps the WAL short so
    // that the application's commits never checkpoint.

    @Test func theIndexSaysHowLongTheWALIsAndARestartStartsItAgain() throws {
        let path = directory.path + "/w.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB);")
        let application = try SQLiteDatabase(existingPath: path)
        _ = application.countWaits(autocheckpointFrames: 0)  // never checkpoints by itself
        for id in 1...50 { try application.execute("INSERT INTO t VALUES (\(id), zeroblob(100))") }
        let checkpointer = try SQLiteDatabase(existingPath: path, busyTimeoutMilliseconds: 4)
        let frames = try #require(WALIndex.frames(databasePath: path))
        #expect(frames >= 50)
        let passive = try #require(try checkpointer.checkpoint(.passive))
        #expect(passive.walFrames == frames && passive.checkpointed == frames)
        // A reader in the middle of a read keeps the restart from completing: busy, nothing lost.
        let reader = try SQLiteDatabase(existingPath: path)
        try reader.execute("BEGIN")
        #expect(try reader.scalarInteger("SELECT count(*) FROM t") == 50)
        try application.execute("INSERT INTO t VALUES (51, zeroblob(100))")
        #expect(try checkpointer.checkpoint(.restart) == nil)
        try reader.execute("COMMIT")
        // Every frame copied with no reader left on them: the application's next commit starts the WAL again.
        let restarted = try #require(try checkpointer.checkpoint(.restart))
        #expect(restarted.walFrames == restarted.checkpointed)
        try application.execute("INSERT INTO t VALUES (52, zeroblob(100))")
        #expect(try #require(WALIndex.frames(databasePath: path)) < 5)
        #expect(try reader.scalarInteger("SELECT count(*) FROM t") == 52)
    }

    @Test func noIndexOrAnUnknownOneSaysNothing() {
        #expect(WALIndex.frames(databasePath: directory.path + "/absent.db") == nil)
        var header = [UInt32](repeating: 0, count: 24)
        header[0] = 3_007_000
        withUnsafeMutableBytes(of: &header[3]) { $0[0] = 1 }
        header[4] = 42
        header.replaceSubrange(12..<24, with: header[0..<12])
        #expect(WALIndex.frames(header: header) == 42)
        var torn = header
        torn[16] = 43  // the second copy differs: a writer was changing it
        #expect(WALIndex.frames(header: torn) == nil)
        var other = header
        other[0] = 1
        other[12] = 1
        #expect(WALIndex.frames(header: other) == nil)
    }
}
