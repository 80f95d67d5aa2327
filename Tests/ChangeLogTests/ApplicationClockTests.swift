import Foundation
import TestSupport
import Testing

@testable import ChangeEvents
@testable import ChangeLog
@testable import SQLiteKit

/// The node's clock bounds the application's (`max_clock_offset`, docs/clocks.md): a local write queued
/// with a time beyond the node's `now` plus the bound is stamped with the node's `now` (still after the
/// row's previous stamp), counted, and the stamp the capturer publishes is the one the row clock gets.
/// The application is the sqlite3 shell writing with the real clock; the node's clock is `now`, passed in
/// one minute behind it.
@Suite struct ApplicationClockTests {
    let directory: TemporaryDirectory
    let path: String
    let db: SQLiteDatabase
    let installation: ChangeLogInstallation
    let nodeNow = Int64(Date().timeIntervalSince1970 * 1000) - 60_000

    init() throws {
        directory = try TemporaryDirectory()
        path = directory.path + "/app.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT);")
        db = try SQLiteDatabase(existingPath: path)
        installation = try ChangeLogInstaller.install(in: db, node: 7)
    }

    func write(_ sql: String) throws {
        let result = try runCommand("/usr/bin/sqlite3", [path, sql])
        #expect(result.status == 0, "\(result.output)")
    }

    func clock(_ key: Int) throws -> UInt64 {
        UInt64(bitPattern: try db.scalarInteger("SELECT __harmonylite__hlc FROM __harmonylite__kv_change_log WHERE k = \(key)"))
    }

    @Test func theMaterializerStampsAnApplicationClockBeyondTheBoundWithTheNodesClock() throws {
        try PendingStamps.setMaxClockOffset(500, in: db)
        try write("INSERT INTO kv VALUES (1, 'a'); UPDATE kv SET v = 'b' WHERE k = 1; INSERT INTO kv VALUES (2, 'c');")
        let materializer = StampMaterializer(database: db)
        let stamped = try db.transaction { () throws(SQLiteError) -> Int in try materializer.materialize(now: nodeNow) }
        #expect(stamped == 3)
        let nowStamp = ClockBound.stamp(milliseconds: UInt64(nodeNow))
        // Row 1's two writes: the node's now, then one more (the previous stamp + 1 still holds).
        #expect(try clock(1) == nowStamp + 1)
        #expect(try clock(2) == nowStamp)
        #expect(try materializer.clamped == 3 && PendingStamps.clampedCount(in: db) == 3)
        // The queue says what the row clocks got: every later reader computes the same stamps.
        #expect(try db.scalarInteger("SELECT count(*) FROM __harmonylite___change_log_global WHERE at = \(Int64(nowStamp))") == 3)

        // Within the bound nothing is clamped: the node's clock one minute later is the application's.
        try write("UPDATE kv SET v = 'd' WHERE k = 2;")
        _ = try db.transaction { () throws(SQLiteError) -> Int in try materializer.materialize(now: nodeNow + 60_000 + 5_000) }
        #expect(try clock(2) > nowStamp + (UInt64(55_000) << 16))
        #expect(try PendingStamps.clampedCount(in: db) == 3)
    }

    @Test func withoutARecordedBoundTheApplicationsClockIsTaken() throws {
        try write("INSERT INTO kv VALUES (1, 'a');")
        let materializer = StampMaterializer(database: db)
        _ = try db.transaction { () throws(SQLiteError) -> Int in try materializer.materialize(now: nodeNow) }
        #expect(try clock(1) > ClockBound.stamp(milliseconds: UInt64(nodeNow + 50_000)))
        #expect(materializer.clamped == 0)
        // A copy's materializer (the snapshot's) never clamps, bound or not.
        try PendingStamps.setMaxClockOffset(500, in: db)
        try write("INSERT INTO kv VALUES (2, 'b');")
        materializer.clampsApplicationClock = false
        _ = try db.transaction { () throws(SQLiteError) -> Int in try materializer.materialize(now: nodeNow) }
        #expect(try clock(2) > ClockBound.stamp(milliseconds: UInt64(nodeNow + 50_000)))
    }

    /// The capturer reads before anything is stamped: it clamps in the queue first, and publishes the stamp
    /// the materializer writes later, at another `now`.
    @Test func theCapturerPublishesTheClampedStampTheRowClockGetsLater() throws {
        try PendingStamps.setMaxClockOffset(500, in: db)
        try write("INSERT INTO kv VALUES (1, 'a'); UPDATE kv SET v = 'b' WHERE k = 1; INSERT INTO kv VALUES (2, 'c');")
        let reader = try ChangeReader(database: db, installation: installation)
        reader.clockBound = ClockBound(maxOffsetMilliseconds: 500)
        let read = try reader.pending(after: 0, limit: 100, now: nodeNow)
        #expect(read.events.count == 2 && read.throughID == 3)
        #expect(try reader.clamped == 3 && PendingStamps.clampedCount(in: db) == 3)
        let nowStamp = ClockBound.stamp(milliseconds: UInt64(nodeNow))
        let published = Dictionary(uniqueKeysWithValues: read.events.map { (String(describing: $0.key.first!), $0.stamp) })
        #expect(published.values.sorted() == [nowStamp, nowStamp + 1], "\(published)")
        let materializer = StampMaterializer(database: db)
        _ = try db.transaction { () throws(SQLiteError) -> Int in try materializer.materialize(now: nodeNow + 2_000) }
        #expect(materializer.clamped == 0)
        #expect(Set([try clock(1), try clock(2)]) == Set(published.values))
        #expect(try PendingStamps.clampedCount(in: db) == 3)
    }

    /// The queue's `at` of entry `id`, in ms since 1970.
    func queuedMilliseconds(_ id: Int) throws -> Int64 {
        Int64(ClockBound.milliseconds(of: UInt64(bitPattern: try db.scalarInteger("SELECT at FROM __harmonylite___change_log_global WHERE id = \(id)"))))
    }

    /// The race the capturer's reads close (docs/clocks.md): another process (the applier) clamps a write
    /// with its `now` and has not committed; the capturer reads with a later `now`, under which the write is
    /// within the bound. The write lies ahead of the reader's clock, so it is read under the write lock: after
    /// the other commit, as clamped; the stamp published is the one the row clock gets.
    @Test func aWriteAheadOfTheClockIsReadAfterAClampUnderWay() throws {
        try PendingStamps.setMaxClockOffset(400, in: db)
        try write("INSERT INTO kv VALUES (1, 'a');")
        let applierNow = try queuedMilliseconds(1) - 450
        let readerNow = applierNow + 160  // within its bound the write is: 290 ms ahead of 400
        let applierSide = try SQLiteDatabase(existingPath: path)
        let materializer = StampMaterializer(database: applierSide)
        try applierSide.execute("BEGIN IMMEDIATE")
        _ = try materializer.materialize(now: applierNow)
        #expect(materializer.clamped == 1)
        let committing = UncheckedBox(applierSide)
        let committer = Thread {
            usleep(200_000)
            try? committing.value.execute("COMMIT")
        }
        committer.start()
        let reader = try ChangeReader(database: db, installation: installation)
        reader.clockBound = ClockBound(maxOffsetMilliseconds: 400)
        let read = try reader.pending(after: 0, limit: 100, now: readerNow)
        #expect(read.events.map(\.stamp) == [ClockBound.stamp(milliseconds: UInt64(applierNow))])
        #expect(read.events.map(\.stamp) == [try clock(1)])
        #expect(reader.clamped == 0)
    }

    /// Writes the application committed just before a read, with the same clock as the node's, are read
    /// outside the write lock: the reader's clock is read once its snapshot is taken. (Read before, every
    /// write of the last millisecond lay "ahead" and each read at saturation took the write lock.)
    @Test func writesCommittedJustBeforeAReadAreReadWithoutTheWriteLock() throws {
        try PendingStamps.setMaxClockOffset(500, in: db)
        let reader = try ChangeReader(database: db, installation: installation)
        reader.clockBound = ClockBound(maxOffsetMilliseconds: 500)
        var through: Int64 = 0
        for round in 0..<20 {
            try write("INSERT INTO kv VALUES (\(round), 'x');")
            let read = try reader.pending(after: through, limit: 100)
            #expect(read.events.count == 1)
            through = read.throughID ?? through
        }
        #expect(reader.lockedReads == 0 && reader.clamped == 0)
        // A commit that lands as the read begins (here 2 ms after the call): before the fix the clock was
        // read at the call, the write lay ahead of it, and the read took the write lock.
        let application = try SQLiteDatabase(existingPath: path)
        reader.beforeRead = {
            usleep(2_000)
            try? application.execute("INSERT INTO kv VALUES (100, 'y')")
        }
        let racing = try reader.pending(after: through, limit: 100)
        #expect(racing.events.map(\.key) == [[.integer(100)]])
        #expect(reader.lockedReads == 0 && reader.clamped == 0)
    }

    /// A write within the bound but ahead of the node's clock is published as written (read under the lock,
    /// not clamped); one beyond the bound is clamped to the node's clock.
    @Test func aWriteAheadOfTheClockWithinTheBoundIsNotClamped() throws {
        try PendingStamps.setMaxClockOffset(400, in: db)
        try write("INSERT INTO kv VALUES (1, 'a');")
        let readerNow = try queuedMilliseconds(1) - 350
        let reader = try ChangeReader(database: db, installation: installation)
        reader.clockBound = ClockBound(maxOffsetMilliseconds: 400)
        let read = try reader.pending(after: 0, limit: 100, now: readerNow)
        #expect(read.events.map { ClockBound.milliseconds(of: $0.stamp) } == [UInt64(readerNow + 350)])
        #expect(reader.clamped == 0 && reader.lockedReads == 1)
        usleep(150_000)  // the node's clock moves on: row 1 stays within the bound
        try write("INSERT INTO kv VALUES (2, 'b');")
        let later = try queuedMilliseconds(2) - 450
        let next = try reader.pending(after: read.throughID ?? 0, limit: 100, now: later)
        #expect(next.events.map(\.stamp) == [ClockBound.stamp(milliseconds: UInt64(later))])
        #expect(try reader.clamped == 1 && PendingStamps.clampedCount(in: db) == 1)
    }

    /// The applier's materialization that clamps commits on its own, before the batch (a batch that fails
    /// afterwards keeps the clamp), and only within `clampCommitMilliseconds` of the `now` it clamped with:
    /// later, it is rolled back and done again with a new `now`.
    @Test func theAppliersClampCommitsAtOnceAndOnlyWhileItsNowIsFresh() throws {
        try PendingStamps.setMaxClockOffset(400, in: db)
        try write("INSERT INTO kv VALUES (1, 'a');")
        let applier = try ChangeApplier(database: db, catalog: installation.catalog)
        // The clock: the first materialization's commit comes 201 ms after its `now` (the deadline is 200).
        var readings: [Int64] = [nodeNow, nodeNow + 201, nodeNow + 1_000, nodeNow + 1_010]
        applier.clock = { readings.isEmpty ? nodeNow + 2_000 : readings.removeFirst() }
        let unknown = ChangeEvent(changeID: 1, table: "missing", operation: .upsert, stamp: 1, writer: 2, columns: ["k"], values: [.integer(9)], keyCount: 1)
        #expect(throws: (any Error).self) { try applier.apply([unknown]) }
        // The batch failed; the clamp, done again at the second `now`, stays, counted once.
        #expect(try queuedMilliseconds(1) == nodeNow + 1_000)
        #expect(try PendingStamps.clampedCount(in: db) == 1)
        #expect(try clock(1) == ClockBound.stamp(milliseconds: UInt64(nodeNow + 1_000)))
    }
}

/// A value handed to another thread by a test that orders the two itself.
private final class UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
