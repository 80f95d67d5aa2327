import TestSupport
import Testing

@testable import SQLiteKit

/// `WALIndex.frames` and `SQLiteDatabase.checkpoint`: the capturer's checkpointer keeps the WAL short so that
/// the application's commits never checkpoint. Real files, several connections.
@Suite struct WALCheckpointTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

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
