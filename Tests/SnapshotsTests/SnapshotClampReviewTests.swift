import Foundation
import TestSupport
import Testing

@testable import ChangeEvents
@testable import ChangeLog
@testable import SQLiteKit
@testable import Snapshots

/// The snapshot maker against the capturer's reader and an application clock ahead, as the second adversarial
/// review of 2026-12-07 attacked them: a consistent copy is kept, and a kept copy's row clocks are the
/// stamps published.
@Suite struct SnapshotClampReviewTests {
    let directory: TemporaryDirectory
    init() throws { directory = try TemporaryDirectory() }

    func app(_ path: String, _ sql: String) throws {
        let result = try runCommand("/usr/bin/sqlite3", [path, sql])
        guard result.status == 0 else { throw TestFailure("sqlite3: \(result.output)") }
    }

    func rowClock(_ db: SQLiteDatabase, _ key: Int) throws -> UInt64? {
        guard let text = try db.rows("SELECT __harmonylite__hlc FROM __harmonylite__t_change_log WHERE id = \(key)").first?.first ?? nil,
            let value = Int64(text)
        else { return nil }
        return UInt64(bitPattern: value)
    }

    /// A write ahead of the node's clock but within the bound (the application's clock 20 s ahead, bound
    /// 60 s) is never clamped by anyone: a copy holding it is consistent and kept, even while the write is
    /// not stamped yet (the capturer down or behind). Before, every attempt was refused `unsettled`.
    @Test func aWriteAheadWithinTheBoundIsCopied() throws {
        let path = directory.path + "/b.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
        let db = try SQLiteDatabase(existingPath: path)
        _ = try ChangeLogInstaller.install(in: db, node: 1)
        try PendingStamps.setMaxClockOffset(60_000, in: db)
        try app(path, "INSERT INTO t VALUES (1, 'a');")
        // The application's clock 20 s ahead of the node's.
        let ahead = Int64(bitPattern: ClockBound.stamp(milliseconds: UInt64(ClockBound.systemNow() + 20_000)))
        try db.execute("UPDATE __harmonylite___change_log_global SET at = \(ahead) WHERE at IS NOT NULL")
        let file = directory.path + "/snap.db"
        #expect(throws: Never.self) { _ = try SnapshotMaker.make(from: path, into: file, nodeID: 1) }
    }

    /// A clamp racing a snapshot, with real lock waits (no `now` passed in): the application's transaction holds the write lock
    /// for 800 ms (bound 500 ms); the capturer's reader, which met a write slightly ahead of its clock, waits
    /// for the lock; the application commits a write made 800 ms into its transaction; the snapshot maker
    /// takes the lock first and keeps its copy; then the reader decides, with the clock read under the lock
    /// (with the `now` read before, it clamped that write and published what the copy did not hold).
    @Test func theReadersStaleClampWithRealLockWaits() throws {
        let path = directory.path + "/c.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
        let db = try SQLiteDatabase(existingPath: path)
        let installation = try ChangeLogInstaller.install(in: db, node: 1)
        try PendingStamps.setMaxClockOffset(500, in: db)
        let reader = try ChangeReader(database: db, installation: installation)
        reader.clockBound = ClockBound(maxOffsetMilliseconds: 500)
        // A write of an application whose clock runs 150 ms ahead (within the bound): first in the queue.
        try app(path, "INSERT INTO t VALUES (9, 'ahead');")
        try db.execute("UPDATE __harmonylite___change_log_global SET at = at + (150 << 16) WHERE at IS NOT NULL")
        let application = try SQLiteDatabase(existingPath: path)
        try application.execute("BEGIN IMMEDIATE")
        final class Box: @unchecked Sendable {
            var reader: ChangeReader; var read: ChangeReader.Pending?; var error: Error?; init(_ r: ChangeReader) { reader = r }
        }
        let box = Box(reader)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            do { box.read = try box.reader.pending(after: 0, limit: 100) } catch { box.error = error }
            done.signal()
        }
        thread.start()
        usleep(800_000)
        try application.execute("INSERT INTO t VALUES (1, 'late in a long transaction')")
        try application.execute("COMMIT")
        let file = directory.path + "/snap-c.db"
        let made = Result { try SnapshotMaker.make(from: path, into: file, nodeID: 1) }
        done.wait()
        if let error = box.error { Issue.record("reader: \(error)"); return }
        guard case .success = made else { Issue.record("snapshot: \(made)"); return }
        let published = try #require(box.read?.events.first { $0.key == [.integer(1)] }, "row 1 read after the wait").stamp
        let snapshotClock = try rowClock(try SQLiteDatabase(existingPath: file), 1)
        #expect(snapshotClock == published, "snapshot row clock \(String(describing: snapshotClock)) = published \(published) (clamped: \(reader.clamped))")
    }
}
