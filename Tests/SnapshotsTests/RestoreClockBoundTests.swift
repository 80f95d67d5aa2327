import Foundation
import TestSupport
import Testing

@testable import ChangeEvents
@testable import ChangeLog
@testable import SQLiteKit
@testable import Snapshots

/// Stamps from snapshots meet the bound on time (`max_clock_offset`): a snapshot whose row clocks hold a
/// stamp beyond this node's clock plus the bound is refused, naming the table, the stamp as a time and
/// the bound, and the live database is not touched (issue 21's pinned row, stamp 2^62).
extension SnapshotTests {
    /// Node 1 applied a change stamped `stamp` (from a node whose clock runs ahead, or a forger); its
    /// snapshot, restored into node 2 under `bound`.
    func restore(
        withRemoteStamp stamp: UInt64, bound: ClockBound?, name: String = "n"
    ) throws -> (target: String, result: Result<SnapshotRestorer.Outcome, Error>) {
        let source = try node(name + "a.db", "INSERT INTO books VALUES (1, 'Dune', NULL);", id: 1)
        let (db, installation) = try ChangeLogInstaller.open(source, node: 1)
        _ = try ChangeApplier(database: db, catalog: installation.catalog).apply([Self.upsert(2, "pinned", stamp: stamp, writer: 3)])
        let file = directory.path + "/" + name + "snapshot.db"
        let metadata = try SnapshotMaker.make(from: source, into: file, nodeID: 1)
        let target = try node(name + "b.db", "INSERT INTO books VALUES (5, 'mine', NULL);", id: 2)
        return (target, Result { try SnapshotRestorer.restore(file, metadata: metadata, into: target, nodeID: 2, clockBound: bound) })
    }

    @Test func aSnapshotHoldingAStampBeyondTheBoundIsRefusedAndTheDatabaseIsUnchanged() throws {
        let ahead = Self.stamp(offsetMilliseconds: 10_000)
        let (target, result) = try restore(withRemoteStamp: ahead, bound: ClockBound(maxOffsetMilliseconds: 500))
        guard case .failure(let error) = result else { Issue.record("a snapshot stamped 10 s ahead was restored"); return }
        let message = "\(error)"
        #expect(message.contains("the snapshot's table books holds a row stamped \(SnapshotStampCheck.time(of: ahead))"), "\(message)")
        #expect(message.contains("beyond max_clock_offset (500 ms): refused, the database is unchanged"), "\(message)")
        #expect(try app(target, "SELECT group_concat(id || ':' || title) FROM books;") == "5:mine\n")
    }

    @Test func issue21sPinnedRowIsRefusedToo() throws {
        let (target, result) = try restore(withRemoteStamp: UInt64(1) << 62, bound: ClockBound())
        guard case .failure(let error) = result else { Issue.record("a snapshot stamped 2^62 was restored"); return }
        #expect("\(error)".contains("stamp \(UInt64(1) << 62)") && "\(error)".contains("books"), "\(error)")
        #expect(try app(target, "SELECT group_concat(id || ':' || title) FROM books;") == "5:mine\n")
        // The top bit set (negative as SQLite stores it) is the largest stamp, not the smallest.
        let (_, top) = try restore(withRemoteStamp: .max - 5, bound: ClockBound(), name: "top")
        #expect(throws: SnapshotRefusal.self) { try top.get() }
    }

    @Test func aSnapshotWithinTheBoundIsRestored() throws {
        let (target, result) = try restore(withRemoteStamp: Self.stamp(offsetMilliseconds: 10_000), bound: ClockBound(maxOffsetMilliseconds: 60_000))
        _ = try result.get()
        #expect(try app(target, "SELECT group_concat(id || ':' || title) FROM (SELECT * FROM books ORDER BY id);") == "1:Dune,2:pinned,5:mine\n")
    }

    @Test func theCheckReadsTheNewestStampOfEveryRowClockTable() throws {
        let path = try node("c.db", "INSERT INTO books VALUES (1, 'a', NULL), (2, 'b', NULL);", id: 1)
        let (db, installation) = try ChangeLogInstaller.open(path, node: 1)
        _ = try db.transaction { () throws(SQLiteError) -> Int in try StampMaterializer(database: db).materialize() }
        let high = Self.stamp(offsetMilliseconds: 2_000)
        _ = try ChangeApplier(database: db, catalog: installation.catalog).apply([Self.upsert(3, "c", stamp: high, writer: 2)])
        let newest = try SnapshotStampCheck.newestStamps(in: db, tables: ["books", "no_such_table"])
        #expect(newest.map(\.table) == ["books"] && newest.first?.stamp == high)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        #expect(SnapshotStampCheck.refusal(newest, bound: ClockBound(maxOffsetMilliseconds: 500), now: now) != nil)
        #expect(SnapshotStampCheck.refusal(newest, bound: ClockBound(maxOffsetMilliseconds: 5_000), now: now) == nil)
    }
}

/// A snapshot's row clocks for local writes not stamped yet are the ones the live node gets: a copy holding a
/// write someone may still clamp in the live queue is not kept.
extension SnapshotTests {
    /// The queue's `at` of the pending write of `id` set `offset` ms ahead of now (an application clock
    /// ahead of the node's).
    func queueAhead(_ path: String, id: Int, offsetMilliseconds offset: Int64) throws {
        let ahead = Int64(bitPattern: ClockBound.stamp(milliseconds: UInt64(ClockBound.systemNow() + offset)))
        try app(path, "UPDATE __harmonylite___change_log_global SET at = \(ahead) WHERE k1 = \(id);")
    }

    /// Within the bound at the `now` the snapshot maker clamped with (under the lock), a write ahead of the
    /// clock is never clamped by anyone later: it is copied as written, and the live row clock gets the same.
    @Test func aWriteAheadOfTheClockWithinTheBoundIsCopiedAsWritten() throws {
        let source = try node("ahead.db", "INSERT INTO books VALUES (1, 'Dune', NULL);", id: 1)
        let db = try SQLiteDatabase(existingPath: source)
        try PendingStamps.setMaxClockOffset(60_000, in: db)
        try queueAhead(source, id: 1, offsetMilliseconds: 30_000)
        let at = try db.scalarInteger("SELECT at FROM __harmonylite___change_log_global WHERE k1 = 1")
        let file = directory.path + "/ahead-snapshot.db"
        _ = try SnapshotMaker.make(from: source, into: file, nodeID: 1)
        let copy = try SQLiteDatabase(existingPath: file)
        #expect(try copy.scalarInteger("SELECT __harmonylite__hlc FROM __harmonylite__books_change_log WHERE id = 1") == at)
        _ = try db.transaction { () throws(SQLiteError) -> Int in try StampMaterializer(database: db).materialize() }
        #expect(try db.scalarInteger("SELECT __harmonylite__hlc FROM __harmonylite__books_change_log WHERE id = 1") == at)
    }

    /// What a copy must not hold: a pending write beyond the stamp no one clamps any more.
    @Test func aCopysWritesBeyondTheSettledStampAreCounted() throws {
        let source = try node("counted.db", "INSERT INTO books VALUES (1, 'Dune', NULL), (2, 'Emma', NULL);", id: 1)
        let db = try SQLiteDatabase(existingPath: source)
        try PendingStamps.setMaxClockOffset(500, in: db)
        try queueAhead(source, id: 2, offsetMilliseconds: 30_000)
        let at = UInt64(bitPattern: try db.scalarInteger("SELECT at FROM __harmonylite___change_log_global WHERE k1 = 2"))
        #expect(try SnapshotMaker.writesAhead(inCopy: source, beyond: at - 1) == 1)
        #expect(try SnapshotMaker.writesAhead(inCopy: source, beyond: at) == 0)
        // Stamped already (past the mark): its clock is written, nothing is pending.
        _ = try db.transaction { () throws(SQLiteError) -> Int in
            let materializer = StampMaterializer(database: db)
            materializer.clampsApplicationClock = false
            return try materializer.materialize()
        }
        #expect(try SnapshotMaker.writesAhead(inCopy: source, beyond: 0) == 0)
    }

    @Test func aWriteBeyondTheBoundIsClampedLiveAndCopiedClamped() throws {
        let source = try node("beyond.db", "INSERT INTO books VALUES (1, 'Dune', NULL);", id: 1)
        let db = try SQLiteDatabase(existingPath: source)
        try PendingStamps.setMaxClockOffset(500, in: db)
        try queueAhead(source, id: 1, offsetMilliseconds: 30_000)
        let file = directory.path + "/beyond-snapshot.db"
        _ = try SnapshotMaker.make(from: source, into: file, nodeID: 1)
        let clamped = try db.scalarInteger("SELECT at FROM __harmonylite___change_log_global WHERE k1 = 1")
        #expect(ClockBound.milliseconds(of: UInt64(bitPattern: clamped)) <= UInt64(ClockBound.systemNow()))
        let copy = try SQLiteDatabase(existingPath: file)
        #expect(try copy.scalarInteger("SELECT __harmonylite__hlc FROM __harmonylite__books_change_log WHERE id = 1") == clamped)
    }
}
