import Foundation
import TestSupport
import Testing

@testable import ChangeEvents
@testable import ChangeLog
@testable import SQLiteKit

/// Renames the installation adopts, and the stamps of the writes queued around them: the stamp published for a
/// local write equals the stamp its row clock gets, and no queued write is lost. Written by the adversarial
/// review of 2026-12-07 (round 4), which found the first and the last two groups broken.
@Suite struct RenameAdoptionTests: InstalledDatabaseFixture {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    func clocks(_ db: SQLiteDatabase, _ table: String) throws -> [[String?]] {
        try db.rows("SELECT id, __harmonylite__hlc, __harmonylite__node, __harmonylite__deleted FROM __harmonylite__\(table)_change_log ORDER BY id")
    }

    /// Rename swap before the installation: `t` → `u`, then `s` → `t` (a migration that renames one table
    /// onto another's old name). The writes queued before the swap — here a DELETE of s's row 2 and an
    /// UPDATE of s's row 1 — must be published as what they are, with their row clocks' stamps, and u's
    /// row clocks must stay u's.
    func renameSwap(sFirst: Bool, stampInBetween: Bool) throws -> (events: [ChangeEvent], db: SQLiteDatabase, before: Int64, uBefore: [[String?]]) {
        let first = sFirst ? "CREATE TABLE s (id INTEGER PRIMARY KEY, v TEXT);" : "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);"
        let second = sFirst ? "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);" : "CREATE TABLE s (id INTEGER PRIMARY KEY, v TEXT);"
        let (path, db, _) = try installed(first + second)
        // t's row 1 first (older clock), s's row 1 later (newer clock).
        try app(path, "INSERT INTO t VALUES (1, 't-one'), (3, 't-three');")
        try materialize(db)
        usleep(5_000)
        try app(path, "INSERT INTO s VALUES (1, 's-one'), (2, 's-two');")
        try materialize(db)
        let before = try PublishWatermark.lastQueuedID(in: db)
        let uBefore = try clocks(db, "t")
        try app(path, "UPDATE s SET v = 's-one-b' WHERE id = 1; DELETE FROM s WHERE id = 2; ALTER TABLE t RENAME TO u; ALTER TABLE s RENAME TO t;")
        if stampInBetween { try materialize(db) }  // the applier's materializer in the window
        let installation = try ChangeLogInstaller.install(in: db, node: 1)
        let events = try ChangeReader(database: db, installation: installation).pending(after: before, limit: 100).events
        return (events, db, before, uBefore)
    }

    func checkSwap(sFirst: Bool, stampInBetween: Bool) throws {
        let (events, db, _, uBefore) = try renameSwap(sFirst: sFirst, stampInBetween: stampInBetween)
        // The former s (now t): row 1 updated, row 2 deleted.
        let tEvents = events.filter { $0.table == "t" }
        #expect(tEvents.contains { $0.key == [.integer(2)] && $0.operation == .delete }, "the DELETE queued before the swap is published")
        #expect(tEvents.contains { $0.key == [.integer(1)] && $0.operation == .upsert })
        // u's clocks are t's old clocks, unchanged (no u write happened).
        #expect(try clocks(db, "u") == uBefore, "u's row clocks are not s's")
        // Every published stamp is the row clock's.
        for event in events {
            let stamp = try db.rows("SELECT __harmonylite__hlc FROM __harmonylite__\(event.table)_change_log WHERE id = \(event.key[0])").first?.first ?? nil
            #expect(
                stamp.flatMap { UInt64($0).map { UInt64(bitPattern: Int64(bitPattern: $0)) } ?? Int64($0).map { UInt64(bitPattern: $0) } } == event.stamp,
                "\(event.table) \(event.key): published \(event.stamp), row clock \(stamp ?? "none")")
        }
    }

    @Test func renameSwapInstalledSFirst() throws { try checkSwap(sFirst: true, stampInBetween: false) }
    @Test func renameSwapInstalledTFirst() throws { try checkSwap(sFirst: false, stampInBetween: false) }
    @Test func renameSwapStampedInBetweenSFirst() throws { try checkSwap(sFirst: true, stampInBetween: true) }
    @Test func renameSwapStampedInBetweenTFirst() throws { try checkSwap(sFirst: false, stampInBetween: true) }
}

extension RenameAdoptionTests {
    /// `DROP TABLE t; ALTER TABLE s RENAME TO t` before the installation (a migration that replaces a table
    /// by a renamed one). s's writes queued before the rename (an UPDATE of row 1, a DELETE of row 2) must be
    /// published, with their row clocks' stamps.
    func dropAndRenameOnto(stampInBetween: Bool) throws {
        let (path, db, _) = try installed("CREATE TABLE s (id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
        try app(path, "INSERT INTO t VALUES (7, 't-seven');")
        try app(path, "INSERT INTO s VALUES (1, 's-one'), (2, 's-two');")
        try materialize(db)
        let before = try PublishWatermark.lastQueuedID(in: db)
        try app(path, "UPDATE s SET v = 's-one-b' WHERE id = 1; DELETE FROM s WHERE id = 2; DROP TABLE t; ALTER TABLE s RENAME TO t;")
        if stampInBetween { try materialize(db) }
        let installation = try ChangeLogInstaller.install(in: db, node: 1)
        let events = try ChangeReader(database: db, installation: installation).pending(after: before, limit: 100).events
        #expect(events.contains { $0.table == "t" && $0.key == [.integer(2)] && $0.operation == .delete }, "the DELETE queued before the rename is published")
        #expect(events.contains { $0.table == "t" && $0.key == [.integer(1)] && $0.operation == .upsert })
    }

    @Test func dropAndRenameOntoTheDroppedName() throws { try dropAndRenameOnto(stampInBetween: false) }
    @Test func dropAndRenameOntoTheDroppedNameStampedInBetween() throws { try dropAndRenameOnto(stampInBetween: true) }
}

extension RenameAdoptionTests {
    func stamp(_ db: SQLiteDatabase, _ table: String, _ key: Int) throws -> UInt64? {
        guard
            let text = try db.rows("SELECT __harmonylite__hlc FROM __harmonylite__\(table)_change_log WHERE \(try keyColumn(db, table)) = \(key)").first?.first
                ?? nil,
            let value = Int64(text)
        else { return nil }
        return UInt64(bitPattern: value)
    }

    func keyColumn(_ db: SQLiteDatabase, _ table: String) throws -> String {
        (try db.rows("SELECT name FROM pragma_table_info('__harmonylite__\(table)_change_log') WHERE pk = 1").first?.first ?? nil).map { "\"\($0)\"" } ?? "id"
    }

    /// Reader reads; a cursor-only apply (no stamping now); the application writes the same rows again; the
    /// reader reads again; the capturer's watermark (onlyKnown); a real apply; then a key-column rename and
    /// the watermark again. Every published stamp is its row clock's.
    @Test func cursorOnlyApplyThenRealApplyAndAKeyRename() throws {
        let (path, db, installation) = try installed("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
        let reader = try ChangeReader(database: db, installation: installation)
        let applier = try ChangeApplier(database: db, catalog: installation.catalog)
        let stamper = StampMaterializer(database: db)
        try app(path, "INSERT INTO t VALUES (1, 'a'), (2, 'b');")
        let r1 = try reader.pending(after: 0, limit: 100)
        _ = try applier.apply([], cursor: ["s": 5])
        try app(path, "UPDATE t SET v = 'a2' WHERE id = 1; DELETE FROM t WHERE id = 2;")
        let r2 = try reader.pending(after: r1.throughID ?? 0, limit: 100)
        _ = try db.transaction { () throws(SQLiteError) -> Int in try stamper.materialize(known: reader.stamps, onlyKnown: true) }
        let remote = ChangeEvent(
            changeID: 1, table: "t", operation: .upsert, stamp: 5, writer: 2, columns: ["id", "v"], values: [.integer(9), .text(Array("r".utf8))], keyCount: 1)
        try app(path, "UPDATE t SET v = 'a3' WHERE id = 1;")
        let r3 = try reader.pending(after: r2.throughID ?? 0, limit: 100)
        _ = try applier.apply([remote])
        try app(path, "ALTER TABLE t RENAME COLUMN id TO kk; UPDATE t SET v = 'a4' WHERE kk = 1;")
        _ = try db.transaction { () throws(SQLiteError) -> Int in try stamper.materialize(known: reader.stamps, onlyKnown: true) }
        // The last published stamp of each row is its row clock's (the key column of the clocks is still `id`).
        var last: [Int: UInt64] = [:]
        for event in r1.events + r2.events + r3.events { if case .integer(let k) = event.key[0] { last[Int(k)] = event.stamp } }
        #expect(try stamp(db, "t", 2) == last[2])
        // Row 1's clock holds the 'a4' write (queued after the rename, never read): later than r3's.
        #expect(try stamp(db, "t", 1).map { $0 > last[1]! } == true)
        let installation2 = try ChangeLogInstaller.install(in: db, node: 1)
        let r4 = try ChangeReader(database: db, installation: installation2).pending(after: r3.throughID ?? 0, limit: 100)
        #expect(r4.events.map(\.stamp) == [try stamp(db, "t", 1)].compactMap { $0 })
    }
}

extension RenameAdoptionTests {
    /// `ALTER TABLE t RENAME TO u; CREATE TABLE t (…)` (a rolling migration: another node did it earlier and
    /// wrote the new t's row 1 at R). Before this node's capturer installs, the applier applies that row: it
    /// compares it with `__harmonylite__t_change_log`, which still holds the OLD t's (now u's) clocks — row 1
    /// written here at T1 > R — and drops it as superseded. After the installation the old clocks become u's
    /// and the new t has no row 1: this node never got it.
    @Test func aNewTableUnderARenamedTablesNameIsComparedWithTheOldClocks() throws {
        let (path, db, installation) = try installed("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
        let remoteStamp = ClockBound.stamp(milliseconds: UInt64(ClockBound.systemNow()))  // R: the other node's write
        usleep(20_000)
        try app(path, "INSERT INTO t VALUES (1, 'old');")  // T1 > R
        try materialize(db)
        try app(path, "ALTER TABLE t RENAME TO u; CREATE TABLE t (id INTEGER PRIMARY KEY, w TEXT);")
        let applier = try ChangeApplier(database: db, catalog: installation.catalog)
        let remote = ChangeEvent(
            changeID: 1, table: "t", operation: .upsert, stamp: remoteStamp, writer: 2, columns: ["id", "w"],
            values: [.integer(1), .text(Array("new".utf8))], keyCount: 1)
        // As the applier receives it: the row waits parked (its table's clocks are still the renamed table's)
        // instead of being compared with them; the installation then adopts the rename, and the retry applies it.
        let source = ChangeApplier.EventSource(stream: "s", sequence: 1, origin: 2, schemaHash: "")
        let outcome = try applier.apply([remote], sources: [source])
        #expect(outcome.applied == 0 && outcome.superseded == 0 && outcome.partlyParked.count == 1)
        _ = try ChangeLogInstaller.install(in: db, node: 1)
        let retried = try applier.apply([remote])
        #expect(retried.applied == 1)
        #expect(try app(path, "SELECT w FROM t WHERE id = 1;") == "new\n", "the other node's row of the new t is applied")
        #expect(try app(path, "SELECT v FROM u WHERE id = 1;") == "old\n")
    }
}

extension RenameAdoptionTests {
    /// A table renamed to its own name in another case (through another name: SQLite refuses `t` → `T`
    /// directly): `ALTER TABLE t RENAME TO x; ALTER TABLE x RENAME TO T`. Pending writes are stamped in the
    /// window (the range's `clocksOf` mapping) and the installation must carry them over.
    @Test func aRenameToTheSameNameInAnotherCase() throws { try renameCase(stampInBetween: true) }
    @Test func aRenameToTheSameNameInAnotherCaseInstalledAtOnce() throws { try renameCase(stampInBetween: false) }

    func renameCase(stampInBetween: Bool) throws {
        let (path, db, _) = try installed("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
        try app(path, "INSERT INTO t VALUES (1, 'a');")
        try materialize(db)
        let before = try PublishWatermark.lastQueuedID(in: db)
        try app(path, "UPDATE t SET v = 'b' WHERE id = 1; ALTER TABLE t RENAME TO x; ALTER TABLE x RENAME TO T;")
        if stampInBetween {
            do { try materialize(db) } catch { Issue.record("the window's materialization: \(error)"); throw error }
        }
        let installation = try ChangeLogInstaller.install(in: db, node: 1)
        let events = try ChangeReader(database: db, installation: installation).pending(after: before, limit: 10).events
        #expect(events.count == 1)
        try app(path, "UPDATE T SET v = 'c' WHERE id = 1;")
        try materialize(db)
        let next = try ChangeReader(database: db, installation: installation).pending(after: before, limit: 10).events
        #expect(next.count == 1)
    }
}
