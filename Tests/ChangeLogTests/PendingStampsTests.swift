import Foundation
import TestSupport
import Testing

@testable import ChangeEvents
@testable import ChangeLog
@testable import SQLiteKit

/// Deferred stamping (`PendingStamps`): the trigger only queues, the capturer computes stamps read-only,
/// the applier and the capturer's watermark write them into the row clocks — and all agree.
@Suite struct PendingStampsTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    @Test func theNextStampIsLaterThanTheWriteAndThePreviousStampUnsigned() {
        #expect(PendingStamps.next(at: 100, previous: nil) == 100)
        #expect(PendingStamps.next(at: 100, previous: 50) == 100)
        #expect(PendingStamps.next(at: 100, previous: 100) == 101)
        #expect(PendingStamps.next(at: 100, previous: UInt64(1) << 63) == (UInt64(1) << 63) + 1)
        #expect(PendingStamps.next(at: 100, previous: .max) == .max)
    }

    /// The application's transaction writes one row of ours (the queue entry, with its commit time); the
    /// row clock is written after it, as the applier or the capturer's watermark stamps it.
    @Test func theApplicationsTransactionOnlyQueues() throws {
        let path = directory.path + "/q.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT);")
        let db = try SQLiteDatabase(existingPath: path)
        _ = try ChangeLogInstaller.install(in: db, node: 7)
        let before = Int64(Date().timeIntervalSince1970 * 1000) << 16
        _ = try runCommand(
            "/usr/bin/sqlite3",
            [path, "INSERT INTO kv VALUES (1, 'a'); UPDATE kv SET v = 'b' WHERE k = 1; DELETE FROM kv WHERE k = 1; INSERT INTO kv VALUES (2, 'c');"])
        #expect(try db.scalarInteger("SELECT count(*) FROM __harmonylite__kv_change_log") == 0)
        #expect(try db.scalarInteger("SELECT count(*) FROM __harmonylite___change_log_global WHERE at >= \(before)") == 4)
        let stamped = try db.transaction { () throws(SQLiteError) -> Int in try StampMaterializer(database: db).materialize() }
        #expect(stamped == 4)
        let clocks = try db.rows("SELECT k, __harmonylite__node, __harmonylite__deleted FROM __harmonylite__kv_change_log ORDER BY k")
        #expect(clocks == [["1", "7", "1"], ["2", "7", "0"]])
        // Three writes of row 1, at most milliseconds apart: three distinct, increasing stamps.
        let stamp1 = try db.scalarInteger("SELECT __harmonylite__hlc FROM __harmonylite__kv_change_log WHERE k = 1")
        let ats = try db.rows("SELECT at FROM __harmonylite___change_log_global WHERE k1 = 1 ORDER BY id").compactMap { $0[0].flatMap { Int64($0) } }
        #expect(ats.count == 3 && stamp1 >= ats[0] + 2 && stamp1 >= ats[2])
    }

    /// A database installed by a version whose triggers stamped the row clock: its queue gains `at`, and
    /// what it had queued counts as stamped.
    @Test func anEarlierInstallationsQueueCountsAsStamped() throws {
        let path = directory.path + "/old.db"
        try makeDatabase(
            path,
            """
            PRAGMA journal_mode=WAL; CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT);
            CREATE TABLE __harmonylite___change_log_global (id INTEGER PRIMARY KEY, table_id INTEGER NOT NULL, k1);
            INSERT INTO __harmonylite___change_log_global VALUES (1, 1, 5), (2, 1, 6);
            """)
        let db = try SQLiteDatabase(existingPath: path)
        _ = try ChangeLogInstaller.install(in: db, node: 1)
        #expect(try PendingStamps.stampedThrough(in: db) == 2)
        _ = try runCommand("/usr/bin/sqlite3", [path, "INSERT INTO kv VALUES (9, 'x');"])
        #expect(try db.rows("SELECT id, k1, at IS NOT NULL FROM __harmonylite___change_log_global WHERE id > 2") == [["3", "9", "1"]])
    }

    /// The applier stamps what is pending only in a transaction that changes row clocks: storing the cursor
    /// of the node's own messages leaves the local writes pending (the capturer stamps them from its read);
    /// applying another node's change stamps them first.
    @Test func onlyAnApplyThatChangesRowClocksStampsWhatIsPending() throws {
        let path = directory.path + "/cursor.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT);")
        let db = try SQLiteDatabase(existingPath: path)
        let installation = try ChangeLogInstaller.install(in: db, node: 1)
        let applier = try ChangeApplier(database: SQLiteDatabase(existingPath: path), catalog: installation.catalog)
        _ = try runCommand("/usr/bin/sqlite3", [path, "INSERT INTO kv VALUES (1, 'a'); INSERT INTO kv VALUES (2, 'b');"])
        let queued = try PublishWatermark.lastQueuedID(in: db)
        let before = try PendingStamps.stampedThrough(in: db)
        _ = try applier.apply([], cursor: ["s": 5])
        #expect(try PendingStamps.stampedThrough(in: db) == before)
        #expect(try db.scalarInteger("SELECT count(*) FROM __harmonylite__kv_change_log") == 0)
        let remote = ChangeEvent(
            changeID: 1, table: "kv", operation: .upsert, stamp: 1 << 20, writer: 2, columns: ["k", "v"], values: [.integer(3), .text("r")], keyCount: 1)
        _ = try applier.apply([remote], cursor: ["s": 6])
        #expect(try PendingStamps.stampedThrough(in: db) == queued)
        #expect(try db.rows("SELECT k, __harmonylite__node FROM __harmonylite__kv_change_log ORDER BY k") == [["1", "1"], ["2", "1"], ["3", "2"]])
    }

    /// `onlyKnown`: the capturer's watermark stamps the entries its reader read, and no more; what was queued
    /// after the read stays pending with the same stamps a whole-queue materialization gives it.
    @Test func onlyKnownStampsThePrefixTheReaderRead() throws {
        let path = directory.path + "/prefix.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT);")
        let db = try SQLiteDatabase(existingPath: path)
        let installation = try ChangeLogInstaller.install(in: db, node: 1)
        _ = try runCommand("/usr/bin/sqlite3", [path, "INSERT INTO kv VALUES (1, 'a'); INSERT INTO kv VALUES (2, 'b'); UPDATE kv SET v = 'c' WHERE k = 1;"])
        let reader = try ChangeReader(database: db, installation: installation)
        let read = try reader.pending(after: 0, limit: 100)
        let readThrough = try #require(read.throughID)
        _ = try runCommand("/usr/bin/sqlite3", [path, "UPDATE kv SET v = 'd' WHERE k = 1; DELETE FROM kv WHERE k = 2; INSERT INTO kv VALUES (3, 'e');"])
        let materializer = StampMaterializer(database: db)
        let stamped = try db.transaction { () throws(SQLiteError) -> Int in try materializer.materialize(known: reader.stamps, onlyKnown: true) }
        #expect(stamped == 3)
        #expect(try PendingStamps.stampedThrough(in: db) == readThrough)
        let clocks = "SELECT k, __harmonylite__hlc, __harmonylite__deleted FROM __harmonylite__kv_change_log ORDER BY k"
        let published = Dictionary(uniqueKeysWithValues: read.events.map { ($0.key, $0.stamp) })
        #expect(
            try db.rows(clocks) == [
                ["1", "\(Int64(bitPattern: published[[.integer(1)]]!))", "0"], ["2", "\(Int64(bitPattern: published[[.integer(2)]]!))", "0"],
            ])
        // The rest, stamped later, gets what stamping the whole queue at once gives (a copy of the database).
        try db.execute("VACUUM INTO '\(directory.path)/prefix-copy.db'")
        let copy = try SQLiteDatabase(existingPath: directory.path + "/prefix-copy.db")
        try copy.execute("DELETE FROM __harmonylite__kv_change_log; UPDATE __harmonylite___meta SET value = 0 WHERE key = 'stamped_through'")
        _ = try copy.transaction { () throws(SQLiteError) -> Int in try StampMaterializer(database: copy).materialize() }
        _ = try db.transaction { () throws(SQLiteError) -> Int in try materializer.materialize() }
        #expect(try db.rows(clocks) == copy.rows(clocks))
        #expect(try db.rows(clocks).map { $0[2] } == ["0", "1", "0"])
    }

    /// A seeded random run of application writes, capturer reads (with rewinds and restarts), watermark
    /// stores, cleanups and remote batches applied, against a model of the row clocks: every stamp the
    /// capturer publishes for an entry not yet stamped is the one the row clock later gets, and the row
    /// clocks end as the model says.
    @Test(arguments: 1...16)
    func publishedStampsAreTheStampsTheRowClocksGet(seed: UInt64) throws {
        _ = try stampRun(seed: seed, readAndWriteBeforeEachStore: false)
    }

    /// The same, each watermark store coming right after a read and a write: the reader's stamps are usable
    /// and entries were queued after its read, so `onlyKnown` stamps a prefix and leaves the rest pending.
    @Test(arguments: 101...116)
    func prefixStampsAreTheStampsTheRowClocksGet(seed: UInt64) throws {
        let prefixes = try stampRun(seed: seed, readAndWriteBeforeEachStore: true)
        #expect(prefixes > 0, "seed \(seed): no watermark store stamped a prefix")
    }

    /// One seeded run; returns how many watermark stores left entries pending (stamped a prefix).
    private func stampRun(seed: UInt64, readAndWriteBeforeEachStore: Bool) throws -> Int {
        var rng = SplitMix64(seed: seed)
        let path = directory.path + "/n\(seed).db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT);")
        let capturerDB = try SQLiteDatabase(existingPath: path)
        let installation = try ChangeLogInstaller.install(in: capturerDB, node: 1)
        let application = try SQLiteDatabase(existingPath: path)
        let applier = try ChangeApplier(database: SQLiteDatabase(existingPath: path), catalog: installation.catalog)
        var reader = try ChangeReader(database: capturerDB, installation: installation)
        let materializer = StampMaterializer(database: capturerDB)
        var model = ClockModel()
        var readThrough: Int64 = 0, watermark: Int64 = 0
        var published: [Int64: (stamp: UInt64, writer: UInt64)] = [:]
        // The applier's rows with pending stamps, kept up to date across steps (`PendingRows`).
        var pendingRows = PendingRows()
        let pendingQueue = PendingQueue(database: capturerDB)
        var pendingSeen = 0
        var prefixes = 0  // steps that left entries after the reader's pending (the prefix path taken)

        func step(_ choice: UInt64, readLimit: Int? = nil) throws {
            switch choice {
            case 0, 1, 2:
                var sql = "BEGIN;"
                for _ in 0..<(1 + rng.next() % 6) {
                    let key = rng.next() % 6
                    switch rng.next() % 4 {
                    case 0: sql += "DELETE FROM kv WHERE k = \(key);"
                    case 1: sql += "UPDATE kv SET k = \(key + 6) WHERE k = \(key) AND NOT EXISTS (SELECT 1 FROM kv WHERE k = \(key + 6));"
                    default: sql += "INSERT INTO kv VALUES (\(key), 'v\(rng.next() % 100)') ON CONFLICT(k) DO UPDATE SET v = excluded.v;"
                    }
                }
                try application.execute(sql + "COMMIT;")
                for row in try capturerDB.prepare("SELECT id, at, k1 FROM __harmonylite___change_log_global WHERE id > ? ORDER BY id").all([
                    .integer(model.queued)
                ]) {
                    guard case .integer(let id) = row[0], case .integer(let at) = row[1], case .integer(let key) = row[2] else { continue }
                    model.queue(id: id, at: UInt64(bitPattern: at), key: key)
                }
            case 3, 4:
                let stampedThrough = try PendingStamps.stampedThrough(in: capturerDB)
                let read = try reader.pending(after: readThrough, limit: readLimit ?? Int(1 + rng.next() % 8))
                for event in read.events {
                    guard case .integer(let key) = event.key.first else { continue }
                    let expected =
                        event.changeID > stampedThrough
                        ? (model.chainStamp(of: event.changeID, from: stampedThrough), UInt64(1))
                        : try #require(model.materialized[key])
                    #expect(event.stamp == expected.0 && event.writer == expected.1, "seed \(seed): entry \(event.changeID) of row \(key)")
                    if event.changeID > stampedThrough { published[event.changeID] = (event.stamp, event.writer) }
                }
                if let through = read.throughID { readThrough = through }
            case 5:
                // The capturer stores the watermark (stamping what is pending, mostly with the stamps its
                // reader computed), sometimes cleans up.
                watermark = readThrough
                // Half of those stamp only the entries the reader read (the prefix its stamps cover).
                let known = rng.next() % 4 == 0 && !readAndWriteBeforeEachStore ? nil : reader.stamps
                let onlyKnown = rng.next() % 2 == 0 || readAndWriteBeforeEachStore
                try capturerDB.transaction { () throws(SQLiteError) in
                    try materializer.materialize(known: known, onlyKnown: onlyKnown)
                    try PublishWatermark.write(watermark, to: capturerDB)
                    if rng.next() % 2 == 0 { try PublishWatermark.removePublished(from: capturerDB) }
                }
                let stampedThrough = try PendingStamps.stampedThrough(in: capturerDB)
                #expect(stampedThrough == model.queued || (onlyKnown && stampedThrough == known?.through), "seed \(seed)")
                if stampedThrough < model.queued { prefixes += 1 }
                try model.materialize(through: stampedThrough, checking: published)
            case 6:
                // A remote batch; the applier stamps what is pending first.
                let now = UInt64(Date().timeIntervalSince1970 * 1000) << 16
                var events: [ChangeEvent] = []
                for _ in 0..<(1 + rng.next() % 3) {
                    let key = Int64(rng.next() % 12)
                    let stamp = now &+ (rng.next() % 4 << 16) &- (2 << 16) &+ rng.next() % 3
                    let writer = 2 + rng.next() % 2
                    events.append(
                        ChangeEvent(
                            changeID: 1, table: "kv", operation: rng.next() % 4 == 0 ? .delete : .upsert, stamp: stamp, writer: writer,
                            columns: ["k", "v"], values: [.integer(key), .text("r\(stamp % 97)")], keyCount: 1))
                }
                for index in events.indices where events[index].operation == .delete {
                    events[index].columns = ["k"]
                    events[index].values = [events[index].values[0]]
                }
                _ = try applier.apply(events)
                try model.materialize(checking: published)
                for event in events {
                    guard case .integer(let key) = event.key.first else { continue }
                    model.applyRemote(key: key, stamp: event.stamp, writer: event.writer)
                }
            default:
                // The capturer restarts (a new chain) or re-reads from the watermark (after the broker went away).
                if rng.next() % 2 == 0 { reader = try ChangeReader(database: capturerDB, installation: installation) }
                readThrough = watermark
            }
        }
        for _ in 0..<60 {
            defer {
                // Read incrementally, the set is the one a full read from the mark gives.
                var full = PendingRows()
                #expect(throws: Never.self) {
                    try pendingRows.update(from: pendingQueue, in: capturerDB)
                    try full.update(from: PendingQueue(database: capturerDB), in: capturerDB)
                }
                #expect(pendingRows.rows == full.rows, "seed \(seed)")
                pendingSeen += full.rows.count
            }
            let choice = rng.next() % 8
            if readAndWriteBeforeEachStore && choice == 5 {
                try step(3, readLimit: 64)  // a capturer that has caught up
                try step(0)
            }
            try step(choice)
        }
        #expect(pendingSeen > 0, "seed \(seed): no step left a local write pending")
        _ = try capturerDB.transaction { () throws(SQLiteError) -> Int in try materializer.materialize() }
        try model.materialize(checking: published)
        for row in try capturerDB.prepare("SELECT k, __harmonylite__hlc, __harmonylite__node FROM __harmonylite__kv_change_log").all() {
            guard case .integer(let key) = row[0], case .integer(let stamp) = row[1], case .integer(let writer) = row[2] else { continue }
            let expected = try #require(model.materialized[key], "seed \(seed): row \(key) has a clock the model lacks")
            #expect(UInt64(bitPattern: stamp) == expected.stamp && UInt64(bitPattern: writer) == expected.writer, "seed \(seed): row \(key)")
        }
        #expect(try capturerDB.scalarInteger("SELECT count(*) FROM __harmonylite__kv_change_log") == Int64(model.materialized.count))
        // Every clock says whether its row is there (the reader's knowledge of a row is used only while no
        // later write of it is queued).
        let wrongFlags = try capturerDB.scalarInteger(
            "SELECT count(*) FROM __harmonylite__kv_change_log c WHERE c.__harmonylite__deleted != NOT EXISTS (SELECT 1 FROM kv WHERE kv.k = c.k)")
        #expect(wrongFlags == 0, "seed \(seed)")
        return prefixes
    }
}

/// The row clocks as the rules say they must be: entries stamped in queue order from the row's previous
/// stamp; remote writes win on a greater (stamp, writer).
private struct ClockModel {
    var materialized: [Int64: (stamp: UInt64, writer: UInt64)] = [:]
    var entries: [(id: Int64, at: UInt64, key: Int64)] = []
    var queued: Int64 = 0
    var stampedThrough: Int64 = 0

    mutating func queue(id: Int64, at: UInt64, key: Int64) {
        entries.append((id, at, key))
        queued = id
    }

    /// The stamp entry `id` gets when every entry after `from` is stamped in order.
    func chainStamp(of id: Int64, from: Int64) -> UInt64 {
        guard let target = entries.first(where: { $0.id == id }) else { return 0 }
        var previous = materialized[target.key]?.stamp
        for entry in entries where entry.id > from && entry.id <= id && entry.key == target.key {
            previous = PendingStamps.next(at: entry.at, previous: previous)
        }
        return previous ?? 0
    }

    mutating func materialize(checking published: [Int64: (stamp: UInt64, writer: UInt64)]) throws {
        try materialize(through: queued, checking: published)
    }

    /// Stamps the entries up to `through` only (a prefix of the queue), as the capturer's `onlyKnown` does.
    mutating func materialize(through: Int64, checking published: [Int64: (stamp: UInt64, writer: UInt64)]) throws {
        for entry in entries where entry.id > stampedThrough && entry.id <= through {
            let stamp = PendingStamps.next(at: entry.at, previous: materialized[entry.key]?.stamp)
            if let seen = published[entry.id] { #expect(seen.stamp == stamp, "entry \(entry.id) was published with another stamp") }
            materialized[entry.key] = (stamp, 1)
        }
        stampedThrough = max(stampedThrough, through)
    }

    mutating func applyRemote(key: Int64, stamp: UInt64, writer: UInt64) {
        if let current = materialized[key], (current.stamp, current.writer) >= (stamp, writer) { return }
        materialized[key] = (stamp, writer)
    }
}
