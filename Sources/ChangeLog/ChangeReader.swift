import ChangeEvents
import SQLiteKit

/// Reads the local changes not yet published, as events: for each queued (table, key), the row's current
/// values and its stamp, read together in one transaction. A row queued several times in one read becomes
/// one event (its latest state), at the position of its last change. Stamps not yet in the row clocks are
/// computed as `StampMaterializer` will write them (`PendingStamps`), without writing.
public final class ChangeReader {
    private let database: SQLiteDatabase
    private let node: UInt64
    private let tablesByID: [Int64: TableInfo]
    private let globalRead: SQLiteStatement
    /// `PendingStamps.markQuery`, prepared once (it is read at every look).
    private let markRead: SQLiteStatement
    private var statements: [String: TableReads] = [:]
    private var lastReads: (table: String, reads: TableReads)?

    /// Per table: the row clock's and the row's reads, and the event's column names (key columns first),
    /// made once rather than for every row.
    private struct TableReads {
        var clock: SQLiteStatement
        var row: SQLiteStatement
        var keyNames: [String]
        var columns: [String]
    }
    private let keyWidth: Int
    private var chain = StampChain(base: -1, schemaVersion: -1)
    /// Reads a version UNIQUE settlement holds aside (`HeldAsideRows`), prepared when first needed.
    private var heldAside: SQLiteStatement?

    public init(database: SQLiteDatabase, installation: ChangeLogInstallation) throws(SQLiteError) {
        self.database = database
        node = try PendingStamps.node(in: database)
        var byID: [Int64: TableInfo] = [:]
        for table in installation.catalog.replicated {
            if let id = installation.tableIDs[table.name] { byID[id] = table }
        }
        tablesByID = byID
        keyWidth = installation.catalog.replicated.map { $0.primaryKey.count }.max() ?? 0
        let keys = (0..<keyWidth).map { ", " + ChangeLogSchema.keyColumn($0 + 1) }.joined()
        globalRead = try database.prepare(
            "SELECT id, table_id, at\(keys) FROM \(ChangeLogSchema.quote(ChangeLogSchema.globalLog)) WHERE id > ? ORDER BY id LIMIT ?")
        markRead = try database.prepare(PendingStamps.markQuery)
    }

    public struct Pending: Sendable {
        public var events: [ChangeEvent]
        /// The highest change-log id read (events may be fewer: duplicates merged, entries of tables no
        /// longer replicated skipped).
        public var throughID: Int64?
        /// Entries skipped because their table is gone or no longer replicated.
        public var skipped: Int
        /// Nothing was read: the schema is not `schemaVersion` (an `ADD COLUMN` committed since the
        /// installation the reader was made for, say). Install again, make a new reader and read again.
        public var schemaChanged = false
    }

    private struct Entry {
        var id: Int64
        var table: TableInfo
        var key: [SQLiteValue]
        var row: RowIdentity
        /// The entry's stamp when it is not in the row clock yet (nil: read the row clock).
        var pendingStamp: UInt64?
        /// The row's place in the stamp chain (pending entries only).
        var slot = 0
    }

    /// The node's bound on the application's clock (`max_clock_offset`): a pending write stamped beyond
    /// `now` plus the bound is clamped in the queue (`PendingStamps.clampPending`) before it is read as an
    /// event, so its published stamp is the one the row clock gets. Nil: stamps are read as queued.
    public var clockBound: ClockBound?
    /// Local writes this reader clamped.
    public private(set) var clamped = 0
    /// Reads made under the write lock because a write lay ahead of the node's clock.
    public private(set) var lockedReads = 0
    /// Called before each read begins (a test commits a write there).
    var beforeRead: (() -> Void)?
    /// The stamps of the pending entries read so far, for the capturer's materializer: one read serves the
    /// events and the row clocks' writes (`StampMaterializer.materialize(known:)`).
    public var stamps: StampChain { chain }

    /// `now`: the node's clock (ms since 1970), for `clockBound`; nil: the system clock, read once the read's
    /// snapshot is taken (a test passes its own).
    /// - Parameter schemaVersion: when given, nothing is read (`schemaChanged`) unless the database's schema
    ///   is this one (`ChangeLogInstallation.schemaVersion` of the installation the reader was made for),
    ///   checked in the read's own snapshot: a schema change committed after the caller's check (an `ADD
    ///   COLUMN` and an `UPDATE` of the new column) would otherwise be read with the old columns, and the new
    ///   column's value never sent. The capturer passes it; a caller that cannot install again does not.
    public func pending(after watermark: Int64, limit: Int, schemaVersion: Int64? = nil, now: Int64? = nil) throws(SQLiteError) -> Pending {
        guard let clockBound else { return try read(after: watermark, limit: limit, stampLimit: { .max }, schemaVersion: schemaVersion).pending }
        let clock = { now ?? ClockBound.systemNow() }
        // Outside the write lock, only writes at or before the node's clock are read, the clock read once the
        // read's snapshot is taken (every write in it was committed by then: read before, the writes of the
        // last millisecond were all "ahead"). A materializer of another process (the applier's) clamps with
        // the `now` it read under the lock, and only what lies beyond that `now` plus the bound; its clamp
        // becomes visible at its commit, within the bound of that `now` (`ClockBound.clampCommitMilliseconds`).
        // So no write read here is clamped by anyone later.
        let unlocked = try read(
            after: watermark, limit: limit, stampLimit: { ClockBound.stamp(milliseconds: UInt64(max(0, clock()))) | 0xFFFF }, schemaVersion: schemaVersion)
        // What comes before the first write ahead of the clock goes out now; the next read starts at it.
        guard unlocked.metFuture, unlocked.pending.throughID == nil else { return unlocked.pending }
        // A write ahead of the node's clock comes first: read under the write lock, after clamping what lies
        // beyond the bound, so that no materializer's clamp can come between the read and its decision.
        try database.execute("BEGIN IMMEDIATE")
        lockedReads += 1
        do {
            let lockedNow = clock()
            let stampLimit = clockBound.limit(now: lockedNow)
            clamped += try PendingStamps.clampPending(
                limit: stampLimit, clampedTo: ClockBound.stamp(milliseconds: UInt64(max(0, lockedNow))), after: watermark, in: database)
            let locked = try read(after: watermark, limit: limit, stampLimit: { stampLimit }, schemaVersion: schemaVersion, inTransaction: true)
            try database.execute("COMMIT")
            return locked.pending
        } catch {
            try? database.execute("ROLLBACK")
            throw error
        }
    }

    /// The pending events, up to (not including) the first unstamped entry whose `at` lies beyond
    /// `stampLimit` (`metFuture`), asked once the read's snapshot is taken. `inTransaction`: the caller's
    /// transaction is the read's.
    private func read(
        after watermark: Int64, limit: Int, stampLimit limitOnceRead: () -> UInt64, schemaVersion: Int64?, inTransaction: Bool = false
    ) throws(SQLiteError) -> (pending: Pending, metFuture: Bool) {
        beforeRead?()
        if !inTransaction { try database.execute("BEGIN") }
        defer { if !inTransaction { try? database.execute("COMMIT") } }
        let version = try database.scalarInteger("PRAGMA schema_version")  // the snapshot is taken here
        let stampLimit = limitOnceRead()
        if let schemaVersion, version != schemaVersion {
            return (Pending(events: [], throughID: nil, skipped: 0, schemaChanged: true), false)
        }
        let stampedThrough = try PendingStamps.stampedThrough(reading: markRead)
        if !chain.isValid(stampedThrough: stampedThrough, readThrough: watermark) || chain.schemaVersion != version {
            chain = StampChain(base: stampedThrough, schemaVersion: version)
        }
        chain.stampLimit = max(chain.stampLimit, stampLimit)
        if chain.through < watermark {
            // Entries read before (published, or refused) but not stamped yet: the rows' previous stamps.
            // Not checked against the bound on the application's clock here: the materializer reads them again.
            chain.stampLimit = .max
            var from = chain.through
            while from < watermark {
                let earlier = try globalRead.all([.integer(from), .integer(Int64(min(limit, 4096)))]).filter {
                    if case .integer(let id) = $0[0] { return id <= watermark } else { return false }
                }
                guard case .integer(let last) = earlier.last?.first else { break }
                for row in earlier { _ = try entry(row, stampedThrough: stampedThrough) }
                from = last
            }
        }
        var rows = try globalRead.all([.integer(watermark), .integer(Int64(limit))])
        var metFuture = false
        if stampLimit != .max,
            let first = rows.firstIndex(where: { row in
                guard row.count >= 3, case .integer(let id) = row[0], id > stampedThrough, case .integer(let at) = row[2] else { return false }
                return UInt64(bitPattern: at) > stampLimit
            })
        {
            rows.removeSubrange(first...)
            metFuture = true
        }
        var latest: [RowIdentity: Int] = [:]
        var ordered: [Entry?] = []
        var skipped = 0
        for row in rows {
            guard let entry = try entry(row, stampedThrough: stampedThrough) else {
                skipped += 1
                continue
            }
            if let previous = latest[entry.row] { ordered[previous] = nil }
            latest[entry.row] = ordered.count
            ordered.append(entry)
        }
        var events: [ChangeEvent] = []
        for item in ordered {
            guard let item else { continue }
            if let event = try event(for: item) { events.append(event) } else { skipped += 1 }
        }
        var throughID: Int64?
        if case .integer(let last) = rows.last?.first { throughID = last }
        return (Pending(events: events, throughID: throughID, skipped: skipped), metFuture)
    }

    /// One queue row as an entry (nil: its table is not replicated), its stamp folded into the chain when
    /// it is not stamped yet.
    private func entry(_ row: [SQLiteValue], stampedThrough: Int64) throws(SQLiteError) -> Entry? {
        guard let queued = PendingQueue.entry(row, tablesByID: tablesByID) else { return nil }
        let row = RowIdentity(table: queued.table.name, key: queued.key)
        guard queued.id > stampedThrough else { return Entry(id: queued.id, table: queued.table, key: queued.key, row: row, pendingStamp: nil) }
        let clock = try statements(for: queued.table).clock
        let (stamp, slot) = try chain.fold(id: queued.id, row: row, table: queued.table, at: queued.at) { () throws(SQLiteError) -> UInt64? in
            if case .integer(let value) = try clock.first(queued.key)?.first { return UInt64(bitPattern: value) }
            return nil
        }
        return Entry(id: queued.id, table: queued.table, key: queued.key, row: row, pendingStamp: queued.at == nil ? nil : stamp, slot: slot)
    }

    private func event(for entry: Entry) throws(SQLiteError) -> ChangeEvent? {
        let table = entry.table, key = entry.key
        let reads = try statements(for: table)
        let (clockStatement, rowStatement) = (reads.clock, reads.row)
        let stamp: UInt64, writer: UInt64, deleted: Bool
        // A pending entry's row is read once: whether it is there is whether it was deleted.
        var read: [SQLiteValue]?
        if let pending = entry.pendingStamp {
            (stamp, writer) = (pending, node)
            read = try rowStatement.first(key)
            deleted = read == nil
            chain.noteRead(entry.slot, exists: !deleted)
        } else {
            guard let clock = try clockStatement.first(key),
                case .integer(let s) = clock[0], case .integer(let w) = clock[1], case .integer(let d) = clock[2]
            else { return nil }
            (stamp, writer, deleted) = (UInt64(bitPattern: s), UInt64(bitPattern: w), d != 0)
        }
        let keyNames = reads.keyNames
        if !deleted, read == nil { read = try rowStatement.first(key) }
        if !deleted, let row = read {
            return ChangeEvent(
                changeID: entry.id, table: table.name, operation: .upsert, stamp: stamp,
                writer: writer, columns: reads.columns, values: row, keyCount: keyNames.count)
        }
        if !deleted, entry.pendingStamp == nil, var held = try heldAsideVersion(of: table, key: key, stamp: stamp, writer: writer) {
            // Not in its table but alive: UNIQUE settlement holds this version aside here (a later row holds
            // its value). It is published as the version it is — never as a delete, which other nodes would
            // keep for good — and they settle it the same way.
            held.changeID = entry.id
            return held
        }
        return ChangeEvent(
            changeID: entry.id, table: table.name, operation: .delete, stamp: stamp,
            writer: writer, columns: keyNames, values: key, keyCount: keyNames.count)
    }

    /// The version UNIQUE settlement holds aside for this row, if it is exactly (stamp, writer).
    private func heldAsideVersion(of table: TableInfo, key: [SQLiteValue], stamp: UInt64, writer: UInt64) throws(SQLiteError) -> ChangeEvent? {
        if heldAside == nil {
            heldAside = try database.prepare(
                "SELECT version FROM \(ChangeLogSchema.quote(ChangeLogSchema.conflicts)) "
                    + "WHERE table_name = ? AND losing_key = ? AND losing_stamp = ? AND losing_writer = ?")
        }
        let row = try heldAside?.all([
            .text(table.name), .text(HeldAsideRows.keyText(key)), .integer(Int64(bitPattern: stamp)), .integer(Int64(bitPattern: writer)),
        ]).first
        guard case .blob(let bytes)? = row?.first else { return nil }
        return try? ChangeBatch(decoding: bytes).events.first
    }

    private func statements(for table: TableInfo) throws(SQLiteError) -> TableReads {
        // Rows come table by table: the last table's reads first, without hashing its name.
        if let last = lastReads, last.table == table.name { return last.reads }
        if let cached = statements[table.name] {
            lastReads = (table.name, cached)
            return cached
        }
        let q = ChangeLogSchema.quote
        let keyMatch = table.primaryKey.map { "\(q($0.name)) = ?" }.joined(separator: " AND ")
        let columns = (table.primaryKey + table.columns.filter { $0.primaryKeyPosition == 0 }).map(\.name)
        let reads = TableReads(
            clock: try database.prepare(
                "SELECT \(q(ChangeLogSchema.stampColumn)), \(q(ChangeLogSchema.nodeColumn)), \(q(ChangeLogSchema.deletedColumn)) FROM \(q(ChangeLogSchema.changeLog(of: table.name))) WHERE \(keyMatch)"
            ),
            row: try database.prepare("SELECT \(columns.map(q).joined(separator: ", ")) FROM \(q(table.name)) WHERE \(keyMatch)"),
            keyNames: table.primaryKey.map(\.name), columns: columns)
        statements[table.name] = reads
        lastReads = (table.name, reads)
        return reads
    }
}

/// A row: its table and key values. Hashed once, when made (a row's identity is looked up in several
/// tables per captured row: the stamp chain, the reader's latest entries, the materializer's writes).
struct RowIdentity: Hashable {
    let table: String
    let key: [SQLiteValue]
    private let hash: Int

    init(table: String, key: [SQLiteValue]) {
        self.table = table
        self.key = key
        var hasher = Hasher()
        hasher.combine(table)
        hasher.combine(key)
        hash = hasher.finalize()
    }

    static func == (lhs: RowIdentity, rhs: RowIdentity) -> Bool {
        lhs.hash == rhs.hash && lhs.table == rhs.table && lhs.key == rhs.key
    }

    func hash(into hasher: inout Hasher) { hasher.combine(hash) }
}

/// The capturer's bookkeeping in `__harmonylite___meta`: how far JetStream has acknowledged the queue.
public enum PublishWatermark {
    public static func read(_ database: SQLiteDatabase) throws(SQLiteError) -> Int64 {
        let rows = try database.prepare("SELECT value FROM \(ChangeLogSchema.quote(ChangeLogSchema.meta)) WHERE key = 'published_through'").all()
        if case .integer(let value) = rows.first?.first { return value }
        return 0
    }

    public static func write(_ id: Int64, to database: SQLiteDatabase) throws(SQLiteError) {
        try database.prepare("INSERT OR REPLACE INTO \(ChangeLogSchema.quote(ChangeLogSchema.meta)) (key, value) VALUES ('published_through', ?)").run([
            .integer(id)
        ])
    }

    /// The newest change-log id (0 when none was ever queued). Ids are consecutive and the newest entry is
    /// never deleted, so this minus the watermark is HarmonyLite's `pending_publish`, without counting rows.
    public static func lastQueuedID(in database: SQLiteDatabase) throws(SQLiteError) -> Int64 {
        try database.scalarInteger(lastQueuedQuery)
    }

    static let lastQueuedQuery = "SELECT coalesce(max(id), 0) FROM \(ChangeLogSchema.quote(ChangeLogSchema.globalLog))"

    /// Deletes published and stamped queue entries, always keeping the newest row so that ids never restart.
    @discardableResult
    public static func removePublished(from database: SQLiteDatabase) throws(SQLiteError) -> Int {
        let q = ChangeLogSchema.quote
        try database.execute(
            """
            DELETE FROM \(q(ChangeLogSchema.globalLog)) WHERE id <= (SELECT value FROM \(q(ChangeLogSchema.meta)) WHERE key = 'published_through')
              AND id <= (SELECT value FROM \(q(ChangeLogSchema.meta)) WHERE key = '\(PendingStamps.markKey)')
              AND id < (SELECT max(id) FROM \(q(ChangeLogSchema.globalLog)))
            """)
        return database.changes
    }
}
