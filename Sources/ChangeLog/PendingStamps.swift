import ChangeEvents
import SQLiteKit

/// Row clocks of local writes, stamped after the application's transaction instead of inside it.
///
/// The capture trigger only appends (table, key, `at`) to the queue, `at` being the HLC of its commit
/// time; that is one B-tree write in the application's transaction instead of two (the row clock's upsert
/// was the other). A queued write's stamp is then a function of the queue and the row clocks:
///
///     stamp(entry) = max(at, stamp of the row's previous write + 1)
///
/// where the previous write is the row's previous queue entry, or its row clock when it has none since
/// `stamped_through` (in `__harmonylite___meta`). `StampMaterializer` writes those stamps into the row
/// clocks and moves `stamped_through`; the capturer computes them read-only (`StampChain`) for what it
/// publishes. Both get the same numbers because of one rule: **a transaction that changes a row clock
/// first materializes every pending entry** (the applier at the start of each batch that applies a change, replays, installs,
/// snapshots). So while `stamped_through` stays put, no row clock with a pending entry changes.
///
/// Entries whose `at` is NULL were stamped when they were queued (by an earlier version's triggers, a
/// replay or an install): their row clock is already right.
public enum PendingStamps {
    static let markKey = "stamped_through"
    /// The node the installation's local writes are stamped as written by (meta key `node`).
    static let nodeKey = "node"

    /// The stamp after `previous` for a write at `at`: later than both, compared as unsigned 64-bit
    /// numbers (a stamp from the network can be anything); the largest stamp stays the largest.
    public static func next(at: UInt64, previous: UInt64?) -> UInt64 {
        guard let previous else { return at }
        return max(at, previous == .max ? .max : previous + 1)
    }

    /// The node's `max_clock_offset` in ms (meta key; absent: local stamps are not clamped).
    static let maxClockOffsetKey = "max_clock_offset_ms"
    /// How many local writes were clamped to the node's clock, ever (meta key).
    static let clampedKey = "clamped_local_stamps"

    /// The stamp a write at `at` gets when the application's clock ran beyond the bound: the node's `now`
    /// (`clampedTo`) instead; nil when `at` is within `limit`. Pure.
    public static func clamped(at: UInt64, limit: UInt64, clampedTo: UInt64) -> UInt64? {
        at > limit ? clampedTo : nil
    }

    /// Records the node's bound for every process that stamps local writes (the applier's, the capturer's
    /// and the restore's materializers read it); nil removes it (no clamping).
    public static func setMaxClockOffset(_ milliseconds: UInt64?, in database: SQLiteDatabase) throws(SQLiteError) {
        let meta = ChangeLogSchema.quote(ChangeLogSchema.meta)
        if let milliseconds {
            try database.prepare("INSERT OR REPLACE INTO \(meta) (key, value) VALUES ('\(maxClockOffsetKey)', ?)").run([.integer(Int64(clamping: milliseconds))]
            )
        } else {
            try database.execute("DELETE FROM \(meta) WHERE key = '\(maxClockOffsetKey)'")
        }
    }

    /// The bound recorded by `setMaxClockOffset`, if any.
    public static func clockBound(in database: SQLiteDatabase) throws(SQLiteError) -> ClockBound? {
        let rows = try database.prepare("SELECT value FROM \(ChangeLogSchema.quote(ChangeLogSchema.meta)) WHERE key = '\(maxClockOffsetKey)'").all()
        guard case .integer(let value) = rows.first?.first, value > 0 else { return nil }
        return ClockBound(maxOffsetMilliseconds: UInt64(value))
    }

    /// How many local writes were clamped to the node's clock since the change log was installed.
    public static func clampedCount(in database: SQLiteDatabase) throws(SQLiteError) -> Int64 {
        let rows = try database.prepare("SELECT value FROM \(ChangeLogSchema.quote(ChangeLogSchema.meta)) WHERE key = '\(clampedKey)'").all()
        if case .integer(let value) = rows.first?.first { return value }
        return 0
    }

    static func addClamped(_ count: Int, in database: SQLiteDatabase) throws(SQLiteError) {
        guard count > 0 else { return }
        try database.prepare(
            "INSERT INTO \(ChangeLogSchema.quote(ChangeLogSchema.meta)) (key, value) VALUES ('\(clampedKey)', ?) "
                + "ON CONFLICT (key) DO UPDATE SET value = value + excluded.value"
        ).run([.integer(Int64(count))])
    }

    /// Rewrites the queue's `at` of pending entries (after `stamped_through`) beyond `limit` to `clampedTo`,
    /// and counts them; returns how many. Call inside a write transaction. Only ever a rewrite of the queue,
    /// never a stamp computed aside: the capturer's reader, the materializers and a snapshot's copy all read
    /// the same `at` afterwards, so the stamp published is the one the row clock gets.
    /// `after`: entries up to this id are left as they are (the capturer's reader: those it published).
    public static func clampPending(limit: UInt64, clampedTo: UInt64, after: Int64 = 0, in database: SQLiteDatabase) throws(SQLiteError) -> Int {
        guard limit < UInt64(Int64.max) else { return 0 }
        let mark = max(after, try stampedThrough(in: database))
        // `at` holds the stamp's signed bit pattern: a negative one is beyond any limit too.
        try database.prepare("UPDATE \(ChangeLogSchema.quote(ChangeLogSchema.globalLog)) SET at = ? WHERE id > ? AND (at > ? OR at < 0)")
            .run([.integer(Int64(bitPattern: clampedTo)), .integer(mark), .integer(Int64(limit))])
        let count = database.changes
        try addClamped(count, in: database)
        return count
    }

    /// The queue id through which row clocks hold every local write.
    public static func stampedThrough(in database: SQLiteDatabase) throws(SQLiteError) -> Int64 {
        try stampedThrough(reading: database.prepare(markQuery))
    }

    /// The query `stampedThrough` runs, for a caller that keeps it prepared (preparing it cost ~40,000
    /// instructions, more than reading a row: `benchmarks/pipeline-cost.sh`).
    static let markQuery = "SELECT value FROM \(ChangeLogSchema.quote(ChangeLogSchema.meta)) WHERE key = '\(markKey)'"

    /// `stampedThrough` through `markQuery` prepared.
    static func stampedThrough(reading statement: SQLiteStatement) throws(SQLiteError) -> Int64 {
        if case .integer(let value) = try statement.all().first?.first { return value }
        return 0
    }

    static func setStampedThrough(_ id: Int64, in database: SQLiteDatabase) throws(SQLiteError) {
        try database.prepare("INSERT OR REPLACE INTO \(ChangeLogSchema.quote(ChangeLogSchema.meta)) (key, value) VALUES ('\(markKey)', ?)")
            .run([.integer(id)])
    }

    /// The node local writes are stamped as (written at every installation, after the pending entries of
    /// a previous node id were stamped).
    public static func node(in database: SQLiteDatabase) throws(SQLiteError) -> UInt64 {
        let rows = try database.prepare("SELECT value FROM \(ChangeLogSchema.quote(ChangeLogSchema.meta)) WHERE key = '\(nodeKey)'").all()
        guard case .integer(let value) = rows.first?.first else {
            throw SQLiteError(code: 1, message: "\(ChangeLogSchema.meta) names no node: the change log is not installed")
        }
        return UInt64(bitPattern: value)
    }

    static func setNode(_ node: UInt64, in database: SQLiteDatabase) throws(SQLiteError) {
        try database.prepare("INSERT OR REPLACE INTO \(ChangeLogSchema.quote(ChangeLogSchema.meta)) (key, value) VALUES ('\(nodeKey)', ?)")
            .run([.integer(Int64(bitPattern: node))])
    }
}

/// The stamps of pending queue entries as the capturer computes them without writing: the last stamp of
/// each row seen since the chain's base (`stamped_through` when it was started).
public struct StampChain: Sendable {
    /// The `stamped_through` the chain was computed from; a different one invalidates it.
    public private(set) var base: Int64
    /// The `schema_version` the chain was computed at; a different one invalidates it (a table renamed
    /// since: the tables its rows name are gone).
    public private(set) var schemaVersion: Int64
    /// The last queue id folded in.
    public private(set) var through: Int64
    /// Each row seen since the base, by its place in `rows` (one hash lookup per entry folded in).
    private var index: [RowIdentity: Int] = [:]
    /// Per row seen: its last stamp folded in (nil: none, or no clock then) and, for rows whose clocks
    /// `StampMaterializer` would write for the entries folded in (those with an `at`), what it would write:
    /// table, key, last stamp, and whether the row was there when the reader read it (nil: not read, or
    /// written again since). The materializer takes these instead of reading the queue and the row clocks
    /// again (`StampMaterializer.materialize(known:)`).
    private var rows: [RowState] = []
    /// Entries with an `at` folded in: what a materialization of them counts as stamped.
    private(set) var stampedEntries = 0
    /// The highest bound on the application's clock an entry was checked against (`ChangeReader`'s
    /// `stampLimit`); `.max`: unchecked. A materializer with a lower bound cannot take the stamps.
    var stampLimit: UInt64 = 0

    struct Written: Sendable {
        var table: TableInfo
        var key: [SQLiteValue]
        var stamp: UInt64
        var exists: Bool?
        /// `PendingQueue.Entry.clocksOf`.
        var clocksOf: String? = nil
    }

    private struct RowState: Sendable {
        var row: RowIdentity
        var last: UInt64?
        var written: Written?
    }

    public init(base: Int64, schemaVersion: Int64) {
        self.base = base
        self.schemaVersion = schemaVersion
        through = base
    }

    /// Whether the chain can continue from `readThrough` with `stampedThrough` as read now: the mark has
    /// not moved, and nothing after `readThrough` was folded in already.
    public func isValid(stampedThrough: Int64, readThrough: Int64) -> Bool {
        base == stampedThrough && through <= max(readThrough, base)
    }

    /// Folds in entry `id` of `row` and returns its stamp, and the row's place for `noteRead`. `clock` is the
    /// row clock's stamp (read only when the chain has no stamp of the row); `at` nil: the entry was stamped
    /// when queued, its clock is its stamp.
    mutating func fold(
        id: Int64, row: RowIdentity, table: TableInfo, at: UInt64?, clock: () throws(SQLiteError) -> UInt64?
    ) throws(SQLiteError) -> (stamp: UInt64?, slot: Int) {
        through = max(through, id)
        let slot = Self.slot(&index[row, default: rows.count])
        if slot == rows.count { rows.append(RowState(row: row)) }
        let stamp: UInt64?
        if let at {
            var previous = rows[slot].last
            if previous == nil { previous = try clock() }
            let next = PendingStamps.next(at: at, previous: previous)
            stamp = next
            rows[slot].written = Written(table: table, key: row.key, stamp: next, exists: nil)
            stampedEntries += 1
        } else {
            stamp = try clock()
        }
        rows[slot].last = stamp
        return (stamp, slot)
    }

    /// The value `index[row, default:]` holds, inserting the default (one lookup for both).
    private static func slot(_ value: inout Int) -> Int { value }

    /// The reader read the row at `slot` (after folding in its last entry): it was there, or not.
    mutating func noteRead(_ slot: Int, exists: Bool) {
        rows[slot].written?.exists = exists
    }

    /// The row's last stamp folded in (nil: not seen, or no clock then: read the clock).
    func lastStamp(of row: RowIdentity) -> UInt64? { index[row].flatMap { rows[$0].last } }

    /// The rows whose clocks a materialization of the entries folded in writes, with what it writes.
    var written: [(row: RowIdentity, written: Written)] {
        rows.compactMap { state in state.written.map { (state.row, $0) } }
    }
}

/// The queue entries past `stamped_through`: local writes whose stamps are not in the row clocks yet. What
/// `StampMaterializer` stamps, and what the applier's check of the node's own events must count as held.
/// Table ids, key columns, the node and the query are read again only when the schema changed (every
/// installation changes it: it recreates the triggers).
final class PendingQueue {
    struct Entry {
        var id: Int64
        var table: TableInfo
        var key: [SQLiteValue]
        /// Nil: the entry was stamped when it was queued.
        var at: UInt64?
        /// For a table renamed since the last installation: its old name, under which its row clocks are
        /// until the installation adopts them; nil: the table's own.
        var clocksOf: String?
    }

    private let database: SQLiteDatabase
    /// The `schema_version` the tables, key width and statement were read at.
    private(set) var schemaVersion: Int64 = -1
    private var tablesByID: [Int64: TableInfo] = [:]
    /// Tables renamed since the last installation: the old names, under which their row clocks are.
    private var clocksByID: [Int64: String] = [:]
    private var select: SQLiteStatement?
    /// `PendingStamps.markQuery` and the newest queue id, prepared once.
    private var markRead: SQLiteStatement?
    private var lastRead: SQLiteStatement?
    /// The node the entries were written by (`PendingStamps.node`).
    private(set) var node: UInt64 = 0

    init(database: SQLiteDatabase) { self.database = database }

    /// The entries after `stamped_through` in queue order, and the newest queue id (the mark to move to);
    /// nil, after two small reads, when nothing is pending.
    func pending() throws(SQLiteError) -> (entries: [Entry], through: Int64)? {
        let (mark, last) = try marks()
        guard last > mark else { return nil }
        return (try entries(after: mark), last)
    }

    /// `stamped_through` and the newest queue id, through statements kept prepared.
    func marks() throws(SQLiteError) -> (stampedThrough: Int64, lastQueued: Int64) {
        if markRead == nil { markRead = try database.prepare(PendingStamps.markQuery) }
        if lastRead == nil { lastRead = try database.prepare(PublishWatermark.lastQueuedQuery) }
        guard let markRead, let lastRead else { return (0, 0) }
        let mark = try PendingStamps.stampedThrough(reading: markRead)
        guard case .integer(let last) = try lastRead.all().first?.first else { return (mark, 0) }
        return (mark, last)
    }

    /// The entries with ids above `id`, in queue order.
    func entries(after id: Int64) throws(SQLiteError) -> [Entry] {
        try refresh()
        guard let select else { return [] }
        return try select.all([.integer(id)]).compactMap { row in
            guard var entry = Self.entry(row, tablesByID: tablesByID) else { return nil }
            if !clocksByID.isEmpty, case .integer(let tableID) = row[1] { entry.clocksOf = clocksByID[tableID] }
            return entry
        }
    }

    /// A queue row `id, table_id, at, k1…kN` as an entry; nil when its table is not replicated (any more),
    /// or when its key holds a NULL: such a key names no row anywhere (NULLs are all distinct) and cannot be
    /// clocked (the row clock's key is NOT NULL), so an entry queued with one (by the triggers of a version
    /// that took `INTEGER PRIMARY KEY DESC` for the rowid) is passed over, never stamped or published.
    static func entry(_ row: [SQLiteValue], tablesByID: [Int64: TableInfo]) -> Entry? {
        guard row.count >= 3, case .integer(let id) = row[0], case .integer(let tableID) = row[1], let table = tablesByID[tableID],
            row.count >= 3 + table.primaryKey.count, !row[3..<(3 + table.primaryKey.count)].contains(.null)
        else { return nil }
        var at: UInt64?
        if case .integer(let value) = row[2] { at = UInt64(bitPattern: value) }
        return Entry(id: id, table: table, key: Array(row[3..<(3 + table.primaryKey.count)]), at: at)
    }

    func refresh() throws(SQLiteError) {
        let version = try database.scalarInteger("PRAGMA schema_version")
        guard version != schemaVersion else { return }
        let catalog = try TableCatalog.read(database)
        var byID: [Int64: TableInfo] = [:]
        var clocks: [Int64: String] = [:]
        // After `ALTER TABLE t RENAME TO u`, until the capturer installs again, `t` is still the registered
        // name and our triggers keep theirs (SQLite moves them to `u`): the entries queued for `t` are `u`'s
        // rows, their clocks still `t`'s. Taking `t` for a dropped table, a materializer (the applier's, in
        // that window) moved the mark past them without a row clock, and the reader then skipped them: the
        // rows were never published.
        let renamedTo = try database.prepare("SELECT tbl_name FROM sqlite_master WHERE type = 'trigger' AND name = ?")
        for row in try database.prepare("SELECT id, name FROM \(ChangeLogSchema.quote(ChangeLogSchema.tables))").all() {
            guard case .integer(let id) = row[0], case .text(let bytes) = row[1] else { continue }
            let name = String(decoding: bytes, as: UTF8.self)
            var current = name
            if case .text(let owner)? = try renamedTo.first([.text(Array(ChangeLogSchema.trigger(of: name, "insert").utf8))])?.first {
                current = String(decoding: owner, as: UTF8.self)
            }
            guard let table = catalog.table(named: current) else { continue }
            byID[id] = table
            if current != name { clocks[id] = name }
        }
        // Columns id, table_id, at and k1…kN (in that order only in a fresh installation: selected by name).
        let keyWidth = max(0, Int(try database.scalarInteger("SELECT count(*) FROM pragma_table_info('\(ChangeLogSchema.globalLog)')")) - 3)
        let keys = (0..<keyWidth).map { ", " + ChangeLogSchema.keyColumn($0 + 1) }.joined()
        select = try database.prepare("SELECT id, table_id, at\(keys) FROM \(ChangeLogSchema.quote(ChangeLogSchema.globalLog)) WHERE id > ? ORDER BY id")
        node = try PendingStamps.node(in: database)
        tablesByID = byID
        clocksByID = clocks
        schemaVersion = version
    }
}

/// The rows with pending entries, kept across calls for the applier's check of its own events (which runs
/// for every delivery of its own, while up to a few thousand local writes may be pending at saturation):
/// an update reads the mark and the newest queue id, then only the entries queued since the last update,
/// and forgets those the mark has passed. Queue ids only grow (`removePublished` keeps the newest row), so
/// a mark or newest id below what was read, or a schema change, means other content (a restore, a
/// rename): the set is read again from the mark.
struct PendingRows {
    private var mark: Int64 = 0
    /// The newest queue id read.
    private var through: Int64 = 0
    private var schemaVersion: Int64 = -1
    /// Entries in queue order; those before `head` were passed by the mark.
    private var entries: [(id: Int64, row: RowIdentity)] = []
    private var head = 0
    private var counts: [RowIdentity: Int] = [:]

    var isEmpty: Bool { counts.isEmpty }
    func contains(_ row: RowIdentity) -> Bool { counts[row] != nil }
    var rows: Set<RowIdentity> { Set(counts.keys) }

    mutating func update(from queue: PendingQueue, in database: SQLiteDatabase) throws(SQLiteError) {
        let (mark, last) = try queue.marks()
        try queue.refresh()
        if mark < self.mark || last < through || queue.schemaVersion != schemaVersion {
            self = PendingRows()
            schemaVersion = queue.schemaVersion
            through = mark
        }
        self.mark = mark
        while head < entries.count, entries[head].id <= mark {
            let row = entries[head].row
            if let count = counts[row], count > 1 { counts[row] = count - 1 } else { counts[row] = nil }
            head += 1
        }
        if head > 256, head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
        let from = max(through, mark)
        if last > from {
            for entry in try queue.entries(after: from) {
                let row = RowIdentity(table: entry.table.name, key: entry.key)
                entries.append((entry.id, row))
                counts[row, default: 0] += 1
            }
        }
        through = last
    }
}

/// Writes the pending entries' stamps into the row clocks, in queue order, inside the caller's write
/// transaction, and moves `stamped_through` past them. A row that exists is clocked as written by this
/// node (`PendingStamps.node`), a row that does not as deleted by it (its last local write was a delete).
public final class StampMaterializer {
    private let database: SQLiteDatabase
    let queue: PendingQueue
    /// Per table (and row-clock table): the row clock's stamp, whether the row exists, and the clock's write.
    private var statements: [String: Stamping] = [:]
    private var lastStatements: (table: String, clocksOf: String?, stamping: Stamping?)?

    private struct Stamping {
        var clock: SQLiteStatement
        /// The clock's read takes the key twice: a table renamed since the last installation, whose rows may
        /// have clocks under both names (the applier writes other nodes' rows under the new one); the later
        /// stamp is the previous one, as the installation's merge of the two keeps the later clock.
        var keyTwice: Bool
        var exists: SQLiteStatement
        var write: SQLiteStatement

        func previousStamp(_ key: [SQLiteValue]) throws(SQLiteError) -> UInt64? {
            guard keyTwice else {
                guard case .integer(let value) = try clock.first(key)?.first else { return nil }
                return UInt64(bitPattern: value)
            }
            // Compared as stamps (unsigned), not as SQL's signed integers.
            return try clock.all(key + key).compactMap { row -> UInt64? in
                if case .integer(let value) = row.first { UInt64(bitPattern: value) } else { nil }
            }.max()
        }
    }
    private var statementsSchemaVersion: Int64 = -1

    public init(database: SQLiteDatabase) {
        self.database = database
        queue = PendingQueue(database: database)
    }

    /// Materializes every pending entry; returns how many entries it stamped. Call inside a write
    /// transaction, before changing any row clock.
    /// Local writes clamped to the node's clock by this materializer (`PendingStamps.clampPending`).
    public internal(set) var clamped = 0
    /// The bound on the application's clock the last `materialize` read (nil: none).
    public private(set) var lastBound: ClockBound?
    /// False for a copy (the snapshot's): a rewrite of its queue would not reach the live database, whose
    /// own materializer could then clamp the same entry to another time.
    public var clampsApplicationClock = true

    /// `now`: the node's clock (ms since 1970), for the bound on the application's clock: an entry whose `at`
    /// lies beyond `now + max_clock_offset` (the meta key; none: no bound) is stamped as written at `now`.
    ///
    /// `known`: the capturer's reader's stamps (`ChangeReader.stamps`), computed from the same mark: the
    /// entries it covers are neither read from the queue again nor their rows' clocks, and a row the reader
    /// found (or found gone) is not looked up again. So the write lock, which the application may be waiting
    /// for, is held for little more than the row clocks' writes. Ignored unless computed from this very mark
    /// and a bound on the application's clock no looser than this one.
    ///
    /// `onlyKnown`: with usable `known` stamps, materialize only the entries they cover (the queue's prefix the
    /// reader read) and move `stamped_through` to the last of them; the entries queued since stay pending. A
    /// prefix is stamped exactly as the whole queue would stamp it (each stamp depends only on the entries
    /// before it), and the entries after it are stamped later from these row clocks, so nothing else changes;
    /// under the write lock there is then no read of the queue, of row clocks or of rows at all. The
    /// capturer's watermark and cleanup pass it: at saturation the entries queued between its read and its
    /// write lock were thousands, each read and looked up while the application waited.
    @discardableResult
    public func materialize(now: Int64 = ClockBound.systemNow(), known: StampChain? = nil, onlyKnown: Bool = false) throws(SQLiteError) -> Int {
        let (mark, last) = try queue.marks()
        guard last > mark else { return 0 }
        // The bound on the application's clock: beyond it, the queue's `at` is rewritten to the node's now
        // first (`clampPending`), so every later reader of the queue computes the same stamp.
        let bound = clampsApplicationClock ? try PendingStamps.clockBound(in: database) : nil
        lastBound = bound
        let limit = bound?.limit(now: now) ?? .max
        try queue.refresh()  // the node the clocks are written by, even when no entry is read here
        let reused = known.flatMap {
            $0.base == mark && $0.through > mark && $0.through <= last && $0.stampLimit <= limit && $0.schemaVersion == queue.schemaVersion ? $0 : nil
        }
        let through = onlyKnown ? reused?.through ?? last : last
        let entries = through > (reused?.through ?? mark) ? try queue.entries(after: reused?.through ?? mark) : []
        let nowStamp = ClockBound.stamp(milliseconds: UInt64(max(0, now)))
        if limit != .max, entries.contains(where: { ($0.at ?? 0) > limit }) {
            clamped += try PendingStamps.clampPending(limit: limit, clampedTo: nowStamp, in: database)
        }
        let version = try database.scalarInteger("PRAGMA schema_version")
        if version != statementsSchemaVersion {
            statements.removeAll()
            lastStatements = nil
            statementsSchemaVersion = version
        }
        let node = Int64(bitPattern: queue.node)
        // Each row's clock is written once, with its last entry's stamp (earlier entries' stamps are only
        // the chain to it) and whether the row is there now.
        var fresh: [RowIdentity: StampChain.Written] = [:]
        var stamped = reused?.stampedEntries ?? 0
        for entry in entries {
            guard var at = entry.at, let stamping = try statements(for: entry.table, clocksOf: entry.clocksOf) else { continue }
            if let clampedAt = PendingStamps.clamped(at: at, limit: limit, clampedTo: nowStamp) { at = clampedAt }
            let row = RowIdentity(table: entry.table.name, key: entry.key)
            var previous = fresh[row]?.stamp ?? reused?.lastStamp(of: row)
            if previous == nil { previous = try stamping.previousStamp(entry.key) }
            fresh[row] = StampChain.Written(
                table: entry.table, key: entry.key, stamp: PendingStamps.next(at: at, previous: previous), exists: nil, clocksOf: entry.clocksOf)
            stamped += 1
        }
        func write(_ written: StampChain.Written) throws(SQLiteError) {
            guard let stamping = try statements(for: written.table, clocksOf: written.clocksOf) else { return }
            var there = written.exists
            if there == nil { there = try stamping.exists.hasRow(written.key) }
            var values = written.key
            values.reserveCapacity(values.count + 3)
            values.append(.integer(Int64(bitPattern: written.stamp)))
            values.append(.integer(node))
            values.append(.integer(there == true ? 0 : 1))
            try stamping.write.run(values)
        }
        if let reused {
            for (row, written) in reused.written where fresh[row] == nil { try write(written) }
        }
        for written in fresh.values { try write(written) }
        try PendingStamps.setStampedThrough(through, in: database)
        return stamped
    }

    /// The statements for `table`'s entries, their clocks under `clocksOf`'s name (nil: the table's own);
    /// nil when that row-clock table has a key of another width (its key changed: the installation that
    /// follows gives it new row clocks, "start afresh").
    private func statements(for table: TableInfo, clocksOf: String?) throws(SQLiteError) -> Stamping? {
        // Rows come table by table: the last table's statements first, without hashing its name.
        if let last = lastStatements, last.table == table.name, last.clocksOf == clocksOf { return last.stamping }
        let own = ChangeLogSchema.changeLog(of: table.name)
        let cacheKey = clocksOf.map { table.name + "\u{0}" + $0 } ?? table.name
        if let cached = statements[cacheKey] {
            lastStatements = (table.name, clocksOf, cached)
            return cached
        }
        let q = ChangeLogSchema.quote
        var clockTable = table
        clockTable.name = clocksOf ?? table.name
        try database.execute(ChangeLogSchema.changeLogTable(clockTable))
        let keyNames = table.primaryKey.map { q($0.name) }
        let keyMatch = keyNames.map { "\($0) = ?" }.joined(separator: " AND ")
        // The row clocks' own key names, by position: after `RENAME COLUMN` of a key column the entries queued
        // before it (in the same script, say) are stamped here before the installation renews the row-clock
        // table, which still has the old names. (Stamping by the new names failed: "no column named kk", at
        // every start, and the node stopped itself.)
        let keyOf = try database.prepare("SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk")
        func clockKey(_ log: String) throws(SQLiteError) -> [String]? {
            let names = try keyOf.all([.text(Array(log.utf8))]).compactMap { row -> String? in
                if case .text(let bytes) = row.first { String(decoding: bytes, as: UTF8.self) } else { nil }
            }
            return names.count == keyNames.count ? names.map(q) : nil
        }
        func match(_ names: [String]) -> String { names.map { "\($0) = ?" }.joined(separator: " AND ") }
        let log = ChangeLogSchema.changeLog(of: clockTable.name)
        guard let key = try clockKey(log) else { return nil }
        let clockColumns = key + [q(ChangeLogSchema.stampColumn), q(ChangeLogSchema.nodeColumn), q(ChangeLogSchema.deletedColumn)]
        let stamp = q(ChangeLogSchema.stampColumn)
        var clockRead = "SELECT \(stamp) FROM \(q(log)) WHERE \(match(key))"
        var keyTwice = false
        if clocksOf != nil, let ownKey = try clockKey(own) {
            clockRead = "SELECT \(stamp) FROM \(q(log)) WHERE \(match(key)) UNION ALL SELECT \(stamp) FROM \(q(own)) WHERE \(match(ownKey))"
            keyTwice = true
        }
        let prepared = Stamping(
            clock: try database.prepare(clockRead), keyTwice: keyTwice,
            exists: try database.prepare("SELECT 1 FROM \(q(table.name)) WHERE \(keyMatch)"),
            write: try database.prepare(
                "INSERT OR REPLACE INTO \(q(log)) (\(clockColumns.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: clockColumns.count).joined(separator: ", ")))"
            )
        )
        statements[cacheKey] = prepared
        lastStatements = (table.name, clocksOf, prepared)
        return prepared
    }
}
