import ChangeEvents
import SQLiteKit

/// Applies other nodes' events: one SQLite transaction per batch, in the replica role (no trigger fires),
/// last-writer-wins per row on (stamp, writer) against the row clock, deletes leaving tombstones. Columns
/// a local table has but an event lacks (its origin did not have them yet) take their DEFAULT, as they have
/// on the origin: the whole row is last-writer-wins, so every node ends with the same row.
public final class ChangeApplier {
    private let database: SQLiteDatabase
    private var catalog: TableCatalog
    private let statement: StatementCache
    private var plans: [ApplyPlan.Shape: ApplyPlan] = [:]
    /// Each shape of event under this node's names (`localized`).
    private var localNames: [ApplyPlan.Shape: (table: String, columns: [String])] = [:]
    /// The plan of the previous event: a batch is mostly one shape after another, and comparing a few
    /// names costs less than hashing them all for the dictionary.
    private var lastPlan: (shape: ApplyPlan.Shape, plan: ApplyPlan)?
    /// Tables whose row-clock table this applier has made sure exists.
    private var clockTables: Set<String> = []
    /// The `schema_version` the catalog was read at (-1: given, not read).
    private var catalogSchemaVersion: Int64 = -1
    /// Local writes' stamps are written into the row clocks before a batch compares with them.
    private let stamps: StampMaterializer
    /// The node's clock (ms since 1970) for the bound on the application's clock; a test passes its own.
    var clock: () -> Int64 = ClockBound.systemNow
    /// The rows of local writes not stamped yet, for `notYetHeld`.
    private var pendingRows = PendingRows()
    /// Rows UNIQUE settlement holds aside, and how holders of a value are found (`HeldAsideRows`).
    private let heldAside: HeldAsideRows
    /// Whether the current transaction may find rows held aside (some were when it began, or it held some).
    private var mayHoldAside = false
    /// Rows this transaction held aside (table, key): reported if they are still aside when it ends.
    private var heldThisTransaction: Set<[String]> = []
    /// Per table, the latest version this transaction put into it (an upsert applied or a row placed
    /// again): a held-aside row whose recorded holder is later than it, and unchanged, stays as it is.
    private var latestWritten: [String: (stamp: UInt64, writer: UInt64, key: String)] = [:]
    /// Per table, the rows this transaction wrote, deleted, held aside or placed (and the node's own writes it
    /// was given): settlement looks only at the held-aside rows these concern (`HeldAsideRows.concerned`).
    private var touchedRows: [String: [[SQLiteValue]]] = [:]

    public struct Outcome: Equatable, Sendable {
        public var applied = 0
        /// Events older than what the row already holds (or our own): nothing to do.
        public var superseded = 0
        /// Rows this transaction held aside because a later version holds their UNIQUE value (each is in
        /// `__harmonylite___conflicts` until its value is free again).
        public var conflicts: [UniqueConflict] = []
        /// Rows held aside earlier that this transaction placed back in their table.
        public var placedAgain = 0
        /// UNIQUE indexes whose definition could not be evaluated on a row (newly found): their holders are
        /// not found, rows refused by them stay held aside. Each is logged once.
        public var unreadableIndexes: [String] = []
        /// Messages whose events of a table this node lacks (or keys differently) were parked on their own,
        /// the rest of the message applied (`apply(_:sources:)`); each is in the dead-letter table.
        public var partlyParked: [ParkedMessage] = []
    }

    /// Where an event came from, so that its events of a table this node cannot apply yet are parked on
    /// their own (per table, not per message): the message's stream and sequence, its origin and schema hash.
    public struct EventSource: Hashable, Sendable {
        public var stream: String
        public var sequence: UInt64
        public var origin: UInt64
        public var schemaHash: String

        public init(stream: String, sequence: UInt64, origin: UInt64, schemaHash: String) {
            self.stream = stream
            self.sequence = sequence
            self.origin = origin
            self.schemaHash = schemaHash
        }
    }

    /// Puts `database` in the replica role (`SQLiteDatabase.enterReplicaRole`): from now on no trigger
    /// and no foreign-key action fires on this connection, so replicated rows are written as they arrived
    /// and our capture triggers do not capture them.
    public init(database: SQLiteDatabase, catalog: TableCatalog) throws(SQLiteError) {
        try database.enterReplicaRole()
        self.database = database
        self.catalog = catalog
        stamps = StampMaterializer(database: database)
        statement = StatementCache(database)
        heldAside = HeldAsideRows(database: database)
    }

    /// Applies `events` atomically, storing `cursor` (stream → last sequence) and `streams` (stream →
    /// identity, see `StreamIdentities`) in the same transaction. On any failure nothing is applied and the
    /// error names the event.
    /// `localWrites`: the node's own changes (as they come back from the streams): a local write may have
    /// freed, or taken, a value a held-aside row wants, so the held-aside rows they concern are settled too.
    ///
    /// With `sources` (one per event), an event whose table this node lacks, or whose columns or key do not
    /// match it, does not fail the batch: the events of that table are parked on their own, in this
    /// transaction, under their message's stream and sequence (`Outcome.partlyParked`), and the other
    /// tables' rows apply. Without, such an event fails the batch (a parked message's retry, for one).
    public func apply(
        _ events: [ChangeEvent], cursor: [String: UInt64] = [:], streams: [String: UInt64] = [:], localWrites: [ChangeEvent] = [],
        sources: [EventSource]? = nil
    ) throws -> Outcome {
        try apply(events, cursor: cursor, streams: streams, localWrites: localWrites, sources: sources, stamping: !events.isEmpty || !localWrites.isEmpty)
    }

    /// `stamping`: whether the transaction stamps what is pending first. Only one that changes row clocks must
    /// (`PendingStamps`): one that only moves the cursor (the node's own messages coming back, at the
    /// capturer's pace) leaves the local writes to the capturer, which stamps them from its read. Stamping
    /// them here, with the write lock held and every entry read again, kept the application waiting at
    /// saturation. A migration with rows held aside settles them (row clocks change): it starts again stamping.
    private func apply(
        _ events: [ChangeEvent], cursor: [String: UInt64], streams: [String: UInt64], localWrites: [ChangeEvent], sources: [EventSource]?, stamping: Bool
    ) throws -> Outcome {
        try beginMaterialized(stamping: stamping)
        do {
            // A migration since the last batch makes prepared plans name columns that may be gone.
            let migrated = try refreshCatalog()
            try beginSettlement()
            if migrated && mayHoldAside && !stamping {
                rollBack()
                return try apply(events, cursor: cursor, streams: streams, localWrites: localWrites, sources: sources, stamping: true)
            }
            var outcome = Outcome()
            var touched = Set(localWrites.map(\.table))
            var inFull: Set<String> = []
            for write in localWrites { touch(write.table, Array(write.key)) }
            if migrated && mayHoldAside {
                // An index dropped or changed may free (or take) values rows held aside want: all of them.
                let held = Set(try heldAside.tables(among: nil))
                touched.formUnion(held)
                inFull.formUnion(held)
            }
            var setAside: [EventSource: (events: [ChangeEvent], error: ApplyError)] = [:]
            var setAsideTables: Set<[String]> = []
            for (index, received) in events.enumerated() {
                let applied: Bool
                var event = received
                do {
                    if let sources, setAsideTables.contains([sources[index].stream, received.table]) {
                        throw ApplyError(event: received, kind: .schemaMissing, reason: "set aside with the earlier events of \(received.table) in this stream")
                    }
                    event = try localized(received)
                    applied = try apply(event)
                } catch let error as SQLiteError {
                    throw ApplyError(event: event, kind: .database(error.code), reason: "\(error)")
                } catch let error as ApplyError where sources != nil && error.isSchemaMismatch {
                    // Per table: this table's events of this stream wait parked (in order, as they arrived: they
                    // are mapped to local names again when retried), the rest applies.
                    let source = sources![index]
                    setAsideTables.insert([source.stream, received.table])
                    setAside[source, default: ([], error)].events.append(received)
                    continue
                }
                if applied {
                    outcome.applied += 1
                    touched.insert(event.table)
                } else {
                    outcome.superseded += 1
                }
            }
            try settle(touched, inFull: inFull, into: &outcome)
            outcome.partlyParked += keptAside
            keptAside.removeAll()
            outcome.unreadableIndexes = heldAside.takeNewlyUnreadable()
            for (source, parked) in setAside.sorted(by: { ($0.key.stream, $0.key.sequence) < ($1.key.stream, $1.key.sequence) }) {
                let message = ParkedMessage(
                    stream: source.stream, sequence: source.sequence,
                    payload: ChangeBatch(origin: source.origin, schemaHash: source.schemaHash, events: parked.events).encoded(compress: false),
                    reason: "\(parked.error); the message's other rows are applied", kind: parked.error.kind.parkedKind, attempts: 1)
                try ParkedMessages.setAside(message, in: database)
                outcome.partlyParked.append(message)
            }
            for (stream, sequence) in cursor {
                try statement("INSERT OR REPLACE INTO \(q(ChangeLogSchema.meta)) (key, value) VALUES (?, ?)")
                    .run([.text("cursor:" + stream), .integer(Int64(bitPattern: sequence))])
            }
            try StreamIdentities.write(streams, in: database)
            try database.execute("COMMIT")
            return outcome
        } catch {
            rollBack()
            throw error
        }
    }

    /// Whether UNIQUE settlement holds any row aside (`HeldAsideRows`).
    public func holdsRowsAside() throws(SQLiteError) -> Bool { try heldAside.any() }

    /// The stream positions the last applied batches stored (the truth the seq map file mirrors).
    public func storedCursor() throws -> [String: UInt64] { try Self.storedCursor(in: database) }

    /// The stored cursor of any database with our tables (none: empty).
    public static func storedCursor(in database: SQLiteDatabase) throws -> [String: UInt64] {
        var cursor: [String: UInt64] = [:]
        guard try database.scalarInteger("SELECT count(*) FROM sqlite_master WHERE name = '\(ChangeLogSchema.meta)'") > 0 else { return cursor }
        for row in try database.prepare("SELECT key, value FROM \(ChangeLogSchema.quote(ChangeLogSchema.meta)) WHERE key LIKE 'cursor:%'").all() {
            if case .text(let key) = row[0], case .integer(let value) = row[1] {
                cursor[String(decoding: key.dropFirst(7), as: UTF8.self)] = UInt64(bitPattern: value)
            }
        }
        return cursor
    }

    /// Which of `events` (the node's own, coming back from a stream) would change this database: those
    /// whose (stamp, writer) is above the row's clock. Normally none (the row was stamped here when it was
    /// written, and a clock only grows), so the node's own batches cost reads and no write; after a restore
    /// they are the node's changes the snapshot lacks. A row with a local write whose stamp is still pending
    /// (`PendingStamps`) holds the event already: that write is the event's own or a later one. Reads only:
    /// no write lock is taken.
    public func notYetHeld(_ events: [ChangeEvent]) throws -> [ChangeEvent] {
        try notYetHeld(inEach: [events])[0]
    }

    /// `notYetHeld` of each batch, all in one read transaction (a snapshot of the database, no lock that
    /// keeps a writer out): the applier checks a delivery group's own batches at once.
    public func notYetHeld(inEach batches: [[ChangeEvent]]) throws -> [[ChangeEvent]] {
        try database.execute("BEGIN")
        defer { try? database.execute("COMMIT") }
        // A migration since the last look (a table renamed, its row clocks with it) makes cached statements
        // name tables that are gone: without this, the node's own changes coming back fail here for good.
        try refreshCatalog()
        try pendingRows.update(from: stamps.queue, in: database)
        var clocks: [String: SQLiteStatement] = [:]
        return try batches.map { events in try notYetHeld(events, clocks: &clocks) }
    }

    private func notYetHeld(_ events: [ChangeEvent], clocks: inout [String: SQLiteStatement]) throws -> [ChangeEvent] {
        var newer: [ChangeEvent] = []
        for event in events {
            guard let table = try table(named: try localized(event).table) else {
                newer.append(event)  // apply decides (it parks what names a table this node lacks)
                continue
            }
            let key = Array(event.key)
            if !pendingRows.isEmpty, pendingRows.contains(RowIdentity(table: table.name, key: key)) { continue }
            let statement: SQLiteStatement
            if let cached = clocks[table.name] {
                statement = cached
            } else {
                let keyMatch = table.primaryKey.map { "\(q($0.name)) = ?" }.joined(separator: " AND ")
                statement = try self.statement(
                    "SELECT \(q(ChangeLogSchema.stampColumn)), \(q(ChangeLogSchema.nodeColumn)) FROM \(q(ChangeLogSchema.changeLog(of: table.name))) WHERE \(keyMatch)"
                )
                clocks[table.name] = statement
            }
            guard let clock = try statement.all(key).first, case .integer(let stamp) = clock[0], case .integer(let writer) = clock[1] else {
                newer.append(event)
                continue
            }
            if event.supersedes(stamp: UInt64(bitPattern: stamp), writer: UInt64(bitPattern: writer)) { newer.append(event) }
        }
        return newer
    }

    /// Writes this node's changes that were never published back into a restored snapshot, by
    /// last-writer-wins against the snapshot's row clocks: a change the snapshot already holds a later
    /// version of (another node wrote the row after it) is dropped, as it would be on every node; one that
    /// wins is written with its own stamp and queued for publishing again, and so is one whose very version
    /// (same stamp and writer) the database holds already (a restore's merge of the live versions wrote it:
    /// it still has to be published). Returns how many were queued.
    public func replayLocal(_ events: [ChangeEvent], tableIDs: [String: Int64]) throws -> Int {
        try beginMaterialized()
        do {
            try refreshCatalog()
            try beginSettlement()
            var kept = 0
            for event in events {
                guard let tableID = tableIDs[event.table] else {
                    throw ApplyError(event: event, kind: .schemaMissing, reason: "table \(event.table) is not in the snapshot")
                }
                guard try apply(event) || holdsVersion(of: event) else { continue }
                kept += 1
                let key = Array(event.key)
                let keyColumns = (1...key.count).map { ChangeLogSchema.keyColumn($0) }
                try statement(
                    "INSERT INTO \(q(ChangeLogSchema.globalLog)) (table_id, \(keyColumns.joined(separator: ", "))) VALUES (?\(String(repeating: ", ?", count: key.count)))"
                )
                .run([.integer(tableID)] + key)
            }
            var outcome = Outcome()
            try settle(Set(events.map(\.table)), into: &outcome)
            // The entries above carry their stamps already (their `at` is NULL).
            try stamps.materialize()
            try database.execute("COMMIT")
            return kept
        } catch {
            rollBack()
            throw error
        }
    }

    /// Whether the row clock holds exactly `event`'s (stamp, writer).
    private func holdsVersion(of event: ChangeEvent) throws -> Bool {
        guard let table = try table(named: event.table) else { return false }
        let keyMatch = table.primaryKey.map { "\(q($0.name)) = ?" }.joined(separator: " AND ")
        let clock = try statement(
            "SELECT \(q(ChangeLogSchema.stampColumn)), \(q(ChangeLogSchema.nodeColumn)) FROM \(q(ChangeLogSchema.changeLog(of: table.name))) WHERE \(keyMatch)"
        )
        .all(Array(event.key)).first
        return clock == [.integer(Int64(bitPattern: event.stamp)), .integer(Int64(bitPattern: event.writer))]
    }

    /// Claims the row clock first (one statement that writes it only if the event supersedes it), then
    /// writes the row: a superseded event costs one statement, a winning one two. Both are in the batch's
    /// transaction, so the order does not matter to anyone else.
    private func apply(_ event: ChangeEvent) throws -> Bool {
        let plan = try plan(for: event)
        var clock: [SQLiteValue] = []
        clock.reserveCapacity(event.keyCount + 3)
        clock += event.key
        clock.append(.integer(Int64(bitPattern: event.stamp)))
        clock.append(.integer(Int64(bitPattern: event.writer)))
        clock.append(.integer(event.operation == .delete ? 1 : 0))
        try plan.claimClock.run(clock)
        guard database.changes > 0 else { return false }
        // A version held aside for this row is superseded by this one.
        if mayHoldAside {
            try heldAside.release(table: event.table, key: event.key)
            touch(event.table, Array(event.key))
        }
        if event.operation == .upsert, !plan.asideIndices.isEmpty { try keepColumnsAside(event, plan.asideIndices) }
        switch event.operation {
        case .upsert:
            if mayHoldAside { noteWritten(event.table, (event.stamp, event.writer, HeldAsideRows.keyText(event.key))) }
            do {
                try plan.upsert.run(plan.values(of: event))
            } catch {
                guard error.isUniqueViolation else { throw error }
                // Another row holds one of its UNIQUE values: the row's earlier version leaves the table and
                // this one waits aside; `settle` decides, from the latest versions alone, which row keeps it.
                try plan.delete.run(Array(event.key))
                try holdAside(event, holder: nil)
            }
        case .delete: try plan.delete.run(Array(event.key))
        }
        return true
    }

    /// Keeps the values of columns whose fate here is unknown (dropped, or renamed into a column the row also
    /// names?) in the dead-letter table, visible with `-parked` and never retried into any column; the rest
    /// of the row is written. Keyed by the table, the columns and the version, so a redelivery replaces it.
    private func keepColumnsAside(_ event: ChangeEvent, _ indices: [Int]) throws {
        let columns = indices.map { event.columns[$0] }
        let kept = ChangeEvent(
            changeID: event.changeID, table: event.table, operation: .upsert, stamp: event.stamp, writer: event.writer,
            columns: Array(event.columns.prefix(event.keyCount)) + columns,
            values: Array(event.key) + indices.map { event.values[$0] }, keyCount: event.keyCount)
        var hash: UInt64 = 14_695_981_039_346_656_037
        for byte in Array("\(event.writer) \(event.stamp) \(HeldAsideRows.keyText(event.key))".utf8) { hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211 }
        let message = ParkedMessage(
            stream: "\(event.table)(\(columns.joined(separator: ", "))) kept aside", sequence: hash >> 1,
            payload: ChangeBatch(origin: event.writer, schemaHash: "", events: [kept]).encoded(compress: false),
            reason: "column(s) \(columns.joined(separator: ", ")) of \(event.table): this node cannot tell whether they were dropped or renamed "
                + "(docs/schema-changes.md); their values are kept here and never written into another column, the row's other columns are applied",
            kind: .columnsKeptAside, attempts: 1)
        try ParkedMessages.setAside(message, in: database)
        keptAside.append(message)
    }

    /// Column values kept aside in the current transaction (`keepColumnsAside`).
    private var keptAside: [ParkedMessage] = []

    // MARK: UNIQUE settlement (the rule: `HeldAsideRows`, docs/convergence.md)

    /// Notes whether rows are held aside as a transaction begins: without any, settlement costs nothing.
    private func beginSettlement() throws(SQLiteError) {
        keptAside.removeAll()
        mayHoldAside = try heldAside.any()
        heldThisTransaction.removeAll()
        latestWritten.removeAll()
        touchedRows.removeAll()
    }

    private func touch(_ table: String, _ key: [SQLiteValue]) {
        if mayHoldAside { touchedRows[table, default: []].append(key) }
    }

    private func holdAside(_ version: ChangeEvent, holder: HeldAsideRows.Holder?) throws {
        if !mayHoldAside { noteWritten(version.table, (version.stamp, version.writer, HeldAsideRows.keyText(version.key))) }
        try heldAside.hold(version, holder: holder)
        mayHoldAside = true
        touch(version.table, Array(version.key))
        heldThisTransaction.insert([version.table, HeldAsideRows.keyText(version.key)])
    }

    private func noteWritten(_ table: String, _ version: (stamp: UInt64, writer: UInt64, key: String)) {
        if let latest = latestWritten[table], !HeldAsideRows.precedes(version, latest) { return }
        latestWritten[table] = version
    }

    /// Whether `entry` certainly stays aside with the holder it names: that holder is still in its table with
    /// the same version (so it still holds the value), and nothing later than it was written into the table
    /// in this transaction (so no later row took another of the entry's values). Only for tables no local
    /// write touched since the last settlement (those are settled in full).
    private func staysAside(_ entry: HeldAsideRows.Entry, in table: TableInfo) throws(SQLiteError) -> Bool {
        guard !entry.holderKeyValues.isEmpty else { return false }
        let holder = (stamp: entry.holderStamp, writer: entry.holderWriter, key: entry.holderKey)
        if let latest = latestWritten[table.name], !HeldAsideRows.precedes(holder, latest) { return false }
        return try heldAside.holds(table, key: entry.holderKeyValues, stamp: entry.holderStamp, writer: entry.holderWriter)
    }

    /// Brings the rows held aside in `tables` to the state the rule gives for the latest versions: repeatedly,
    /// latest version first, a held-aside row whose row clock still names it goes back into its table when
    /// every row holding one of its UNIQUE values has an earlier version — those rows are held aside in its
    /// place —, and otherwise stays aside, naming the latest row that keeps it there. A version the row clock
    /// no longer names (a newer one was written, here or elsewhere, or a delete) is dropped. Each placement
    /// only ever replaces rows by a later one, so this ends; and the state it ends in — no row in a table
    /// that a later row's value excludes, none aside that no later row excludes — is the one the rule
    /// defines, whatever the order the versions arrived in.
    ///
    /// Cost: a held-aside row whose recorded holder is unchanged and later than anything written in this
    /// transaction costs two lookups (`staysAside`); the others a probe each. Tables in `inFull` (the node's
    /// own writes touched them, outside any transaction of ours) are checked in full.
    private func settle(_ tables: Set<String>, inFull: Set<String> = [], into outcome: inout Outcome) throws {
        guard mayHoldAside else { return }
        for name in try heldAside.tables(among: tables) {
            guard let table = try table(named: name) else { continue }
            if !inFull.contains(name), let signers = try heldAside.signers(of: table) {
                try settleConcerned(table, signers: signers, into: &outcome)
                try report(name, into: &outcome)
                continue
            }
            var placed = true
            while placed {
                placed = false
                for entry in try heldAside.entries(in: name) {
                    if !inFull.contains(name), !heldThisTransaction.contains([name, entry.key]), try staysAside(entry, in: table) { continue }
                    guard try heldAside.isLatest(entry, of: table) else {
                        try heldAside.release(table: name, keyText: entry.key)
                        continue
                    }
                    if try place(entry, in: table) {
                        placed = true
                        outcome.placedAgain += heldThisTransaction.remove([name, entry.key]) == nil ? 1 : 0
                    }
                }
            }
            try report(name, into: &outcome)
        }
        heldThisTransaction.removeAll()
    }

    /// Settlement of one table by lookup: only the held-aside rows this transaction's rows concern (new ones,
    /// those whose own row or holder changed, those wanting a value a written row holds now) are checked,
    /// round after round while placements touch more rows. The same end state as checking every one: a
    /// held-aside row none of these concern keeps its holder, unchanged, in its table.
    private func settleConcerned(_ table: TableInfo, signers: [HeldAsideRows.Signer], into outcome: inout Outcome) throws {
        let name = table.name
        var seen = 0
        var held = Set(heldThisTransaction.filter { $0.first == name }.map { $0[1] })
        while true {
            let touched = Array((touchedRows[name] ?? []).dropFirst(seen))
            seen += touched.count
            let concerned = held.union(try heldAside.concerned(in: table, touched: touched, signers: signers))
            guard !concerned.isEmpty else { return }
            let before = heldThisTransaction
            for entry in try heldAside.entries(in: name, keys: concerned) {
                guard try heldAside.isLatest(entry, of: table) else {
                    try heldAside.release(table: name, keyText: entry.key)
                    continue
                }
                if try place(entry, in: table) {
                    outcome.placedAgain += heldThisTransaction.remove([name, entry.key]) == nil ? 1 : 0
                }
            }
            held = Set(heldThisTransaction.subtracting(before).filter { $0.first == name }.map { $0[1] })
            if held.isEmpty && (touchedRows[name]?.count ?? 0) == seen { return }
        }
    }

    /// Reports the rows this transaction held aside in `name` that are still aside.
    private func report(_ name: String, into outcome: inout Outcome) throws {
        guard heldThisTransaction.contains(where: { $0.first == name }) else { return }
        let keys = Set(heldThisTransaction.filter { $0.first == name }.map { $0[1] })
        for entry in try heldAside.entries(in: name, keys: keys) {
            outcome.conflicts.append(
                UniqueConflict(
                    table: name, columns: entry.label, heldAsideKey: entry.key, heldAsideStamp: entry.stamp, heldAsideWriter: entry.writer,
                    holderKey: entry.holderKey, holderStamp: entry.holderStamp, holderWriter: entry.holderWriter))
        }
    }

    /// Places one held-aside row if no row with a later version holds any of its UNIQUE values (holding
    /// aside the earlier rows that do); otherwise names the latest row that keeps it aside. Returns whether
    /// it was placed.
    private func place(_ entry: HeldAsideRows.Entry, in table: TableInfo) throws -> Bool {
        let event = entry.version
        // A version whose columns no longer map here (a migration since) waits aside for the next one.
        guard let plan = try? plan(for: event) else { return false }
        let key = Array(event.key)
        let holders: [HeldAsideRows.Holder]
        do {
            holders = try heldAside.holders(
                in: table, key: key, columns: plan.names, values: plan.values(of: event), defaults: plan.lacking,
                recording: entry.key)
        } catch {
            // The row cannot be evaluated here (a CHECK or NOT NULL of this node's schema refuses it): it could
            // not be written either, so it stays aside, the same on every node with this schema.
            return false
        }
        let rank = { (holder: HeldAsideRows.Holder) in (stamp: holder.stamp, writer: holder.writer, key: holder.keyText) }
        if let keeper = holders.filter({ HeldAsideRows.precedes(rank($0), (entry.stamp, entry.writer, entry.key)) })
            .min(by: { HeldAsideRows.precedes(rank($0), rank($1)) })
        {
            try heldAside.name(keeper, of: entry)
            return false
        }
        try database.execute("SAVEPOINT harmonylite_place")
        do {
            var displaced: Set<[SQLiteValue]> = []
            for holder in holders where displaced.insert(holder.key).inserted {
                guard let version = try heldAside.version(of: table, key: holder.key, stamp: holder.stamp, writer: holder.writer) else { continue }
                try holdAside(version, holder: HeldAsideRows.Holder(key: key, stamp: entry.stamp, writer: entry.writer, label: holder.label))
                try plan.delete.run(holder.key)
            }
            try plan.upsert.run(plan.values(of: event))
            try heldAside.release(table: table.name, keyText: entry.key)
            try database.execute("RELEASE harmonylite_place")
            noteWritten(table.name, (entry.stamp, entry.writer, entry.key))
            touch(table.name, key)
            return true
        } catch let error as SQLiteError where error.isUniqueViolation {
            // SQLite refuses it for an index the definitions did not explain: it stays aside, nothing changed.
            try database.execute("ROLLBACK TO harmonylite_place")
            try database.execute("RELEASE harmonylite_place")
            return false
        }
    }

    /// `event` under this node's names: a table or column renamed here (`ColumnHistory`) takes its new name,
    /// key columns included, so changes from nodes that have not run the rename yet apply.
    private func localized(_ event: ChangeEvent) throws -> ChangeEvent {
        if let lastPlan, lastPlan.shape.matches(event) { return event }
        let shape = ApplyPlan.Shape(table: event.table, columns: event.columns, keyCount: event.keyCount)
        var localizedEvent = event
        if let names = localNames[shape] {
            (localizedEvent.table, localizedEvent.columns) = names
            return localizedEvent
        }
        if try table(named: event.table) == nil, let renamed = try ColumnHistory.currentName(ofTable: event.table, database: database) {
            localizedEvent.table = renamed
        }
        if let table = try table(named: localizedEvent.table) {
            let local = Set(table.columns.map(\.name))
            for (index, column) in event.columns.enumerated() where !local.contains(column) {
                if case .renamed(let name)? = try ColumnHistory.fate(of: column, in: table.name, database: database), local.contains(name) {
                    localizedEvent.columns[index] = name
                }
            }
        }
        localNames[shape] = (localizedEvent.table, localizedEvent.columns)
        return localizedEvent
    }

    /// Why table `name`'s row clocks are not its own yet, while a rename is not adopted by the capture
    /// installation: our capture trigger for `name` sits on another table (`t` renamed to `u`, a new `t`
    /// created), or `name` carries our triggers of another name (it is that renamed `u`). Nil: they are.
    private func unadoptedRename(of name: String) throws(SQLiteError) -> String? {
        let prefix = ChangeLogSchema.prefix
        let rows = try database.prepare(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' AND substr(name, 1, \(prefix.utf8.count)) = ? AND (name = ? COLLATE NOCASE OR tbl_name = ? COLLATE NOCASE)"
        ).all([.text(Array(prefix.utf8)), .text(Array(ChangeLogSchema.trigger(of: name, "insert").utf8)), .text(Array(name.utf8))])
        let own = ["insert", "update", "delete"].map { ChangeLogSchema.trigger(of: name, $0) }
        for row in rows {
            guard case .text(let triggerBytes) = row[0], case .text(let tableBytes) = row[1] else { continue }
            let (trigger, table) = (String(decoding: triggerBytes, as: UTF8.self), String(decoding: tableBytes, as: UTF8.self))
            if !ChangeLogInstaller.sameSQLiteName(table, name) { return "table \(name) was created under the name of \(table), renamed since" }
            if !own.contains(where: { ChangeLogInstaller.sameSQLiteName($0, trigger) }) { return "table \(name) was renamed from another name" }
        }
        return nil
    }

    /// The statements one shape of event (table, columns) needs, checked and prepared once: building and
    /// looking up SQL text for every event cost more than applying it.
    private func plan(for event: ChangeEvent) throws -> ApplyPlan {
        if let lastPlan, lastPlan.shape.matches(event) { return lastPlan.plan }
        let shape = ApplyPlan.Shape(table: event.table, columns: event.columns, keyCount: event.keyCount)
        if let plan = plans[shape] {
            lastPlan = (shape, plan)
            return plan
        }
        guard var table = try table(named: event.table) else {
            throw ApplyError(
                event: event, kind: .schemaMissing, reason: "table \(event.table) is not replicated here (missing, or refused: see the capturer's log)")
        }
        if let why = try unadoptedRename(of: table.name) {
            // Before the capturer installs again after `ALTER TABLE t RENAME TO u` (and maybe `CREATE TABLE t`),
            // neither table's row clocks are its own: compared with the new t's (u's rows'), other nodes' rows
            // of the new t were dropped as superseded; with u's (none yet), an older version of a u row
            // overwrote a later local one. Such rows wait parked until the installation.
            throw ApplyError(event: event, kind: .schemaMissing, reason: "\(why); waiting for the capture installation to adopt the rename")
        }
        let keyNames = table.primaryKey.map(\.name)
        guard Array(event.columns.prefix(event.keyCount)) == keyNames else {
            throw ApplyError(
                event: event, kind: .keyMismatch,
                reason:
                    "its key (\(event.columns.prefix(event.keyCount).joined(separator: ", "))) is not the local primary key (\(keyNames.joined(separator: ", ")))"
            )
        }
        if !Set(table.columns.map(\.name)).isSuperset(of: event.columns) {
            // A column added since the catalog was read (ALTER TABLE … ADD COLUMN while we run)?
            try refreshCatalog()
            table = try self.table(named: event.table) ?? table
        }
        // Each of the event's columns as it is called here: a column this node renamed is written under its
        // new name, one it dropped is left out (the origin has not run that migration yet).
        let local = Set(table.columns.map(\.name))
        var written: [(index: Int, name: String)] = []
        var aside: [Int] = []
        for (index, column) in event.columns.enumerated() {
            if local.contains(column) {
                written.append((index, column))
                continue
            }
            switch try ColumnHistory.fate(of: column, in: table.name, database: database) {
            case .dropped?: continue
            case .unknown? where index >= event.keyCount: aside.append(index)
            case .renamed(let name)? where local.contains(name): written.append((index, name))
            default:
                throw ApplyError(
                    event: event, kind: .schemaMissing, reason: "column \(column) does not exist in the local table \(table.name) (schemas differ)")
            }
        }
        let names = written.map(\.name)
        let keyMatch = keyNames.map { "\(q($0)) = ?" }.joined(separator: " AND ")
        let log = q(ChangeLogSchema.changeLog(of: table.name))
        let columns = names.map(q).joined(separator: ", ")
        let placeholders = Array(repeating: "?", count: names.count).joined(separator: ", ")
        // The key columns too: under a NOCASE (or RTRIM) key, 'ALICE' is the row 'alice', and an update that
        // changed only the key's case must change it here as well.
        // Columns the event lacks (its origin had not added them yet) take their default, as on the origin:
        // keeping this node's value would make the row differ between nodes that had a value and nodes that
        // did not.
        let lacking = table.columns.filter { !names.contains($0.name) }.map { (name: $0.name, sql: $0.defaultSQL ?? "NULL") }
        let conflict = "DO UPDATE SET " + (names.map { "\(q($0)) = excluded.\(q($0))" } + lacking.map { "\(q($0.name)) = \($0.sql)" }).joined(separator: ", ")
        let clockColumns = (keyNames.map(q) + [q(ChangeLogSchema.stampColumn), q(ChangeLogSchema.nodeColumn), q(ChangeLogSchema.deletedColumn)]).joined(
            separator: ", ")
        let clockPlaceholders = Array(repeating: "?", count: keyNames.count + 3).joined(separator: ", ")
        let stamp = q(ChangeLogSchema.stampColumn), node = q(ChangeLogSchema.nodeColumn), deleted = q(ChangeLogSchema.deletedColumn)
        let supersedes = StampOrder.supersedes(stamp: "excluded.\(stamp)", writer: "excluded.\(node)", over: stamp, node)
        let plan = ApplyPlan(
            valueIndices: written.count == event.columns.count ? nil : written.map(\.index),
            names: names, lacking: lacking, asideIndices: aside,
            claimClock: try database.prepare(
                "INSERT INTO \(log) (\(clockColumns)) VALUES (\(clockPlaceholders)) ON CONFLICT (\(keyNames.map(q).joined(separator: ", "))) "
                    + "DO UPDATE SET \(stamp) = excluded.\(stamp), \(node) = excluded.\(node), \(deleted) = excluded.\(deleted) WHERE \(supersedes)"),
            // OR ABORT: a UNIQUE, NOT NULL or CHECK constraint declared with its own ON CONFLICT (REPLACE deletes
            // the other row, IGNORE skips this one, ROLLBACK ends our transaction) must only refuse the row, so
            // that settlement decides by the rule; the application's own writes keep the declared behaviour.
            upsert: try database.prepare(
                "INSERT OR ABORT INTO \(q(table.name)) (\(columns)) VALUES (\(placeholders)) ON CONFLICT (\(keyNames.map(q).joined(separator: ", "))) \(conflict)"
            ),
            delete: try database.prepare("DELETE FROM \(q(table.name)) WHERE \(keyMatch)")
        )
        plans[shape] = plan
        lastPlan = (shape, plan)
        return plan
    }

    /// The key columns of a local table, in key order (the schema read again once when the table is not
    /// known yet); nil when there is no such table. For messages that do not say which columns are the key
    /// (upstream HarmonyLite's).
    public func primaryKeyColumns(of name: String) throws(SQLiteError) -> [String]? {
        if catalog.table(named: name) == nil { try refreshCatalog() }
        return catalog.table(named: name)?.primaryKey.map(\.name)
    }

    /// The local table, re-reading the schema once when an event names a table we do not know yet
    /// (created after the applier started).
    private func table(named name: String) throws -> TableInfo? {
        var table = catalog.table(named: name)
        if table == nil {
            try refreshCatalog()
            table = catalog.table(named: name)
        }
        if let table, !clockTables.contains(name) {
            // The capturer creates it at install; a table created since may not have one yet.
            try database.execute(ChangeLogSchema.changeLogTable(table))
            clockTables.insert(name)
        }
        return table
    }

    /// Reads the schema again and forgets every prepared plan, when the schema changed since it was last
    /// read: tables and columns may have been created, altered or dropped. The version is remembered only
    /// once all of it is done, so a read that fails is done again at the next batch. The column history is
    /// the capturer's to record (in the order of its looks, `ColumnHistory`); until it has, a change naming a
    /// column dropped here waits parked, and its installation (a schema change) retries it.
    @discardableResult
    private func refreshCatalog() throws(SQLiteError) -> Bool {
        let version = try database.scalarInteger("PRAGMA schema_version")
        guard version != catalogSchemaVersion else { return false }
        statement.removeAll()
        plans.removeAll()
        localNames.removeAll()
        lastPlan = nil
        clockTables.removeAll()
        heldAside.schemaChanged()
        catalog = try TableCatalog.read(database)
        catalogSchemaVersion = version
        return true
    }

    /// Rolls the transaction back, and with it what this applier did for the schema in it (row-clock tables
    /// it created): the next batch reads the schema again instead of counting on them.
    /// Begins a write transaction with every pending local write stamped first (`PendingStamps`' rule).
    ///
    /// A materialization that clamped an application clock beyond the bound commits on its own, at once, and
    /// only within `ClockBound.clampCommitMilliseconds` of the `now` it clamped with (else it is rolled back
    /// and done again): the capturer's reader, in another process, takes writes within its margin of its own
    /// bound for ahead, so a read begun before this commit cannot publish a write this clamps unclamped
    /// (docs/clocks.md). A materialization that clamped nothing stays in the transaction, as before.
    /// `stamping` false: only the transaction begins.
    private func beginMaterialized(stamping: Bool = true) throws(SQLiteError) {
        guard stamping else { return try database.execute("BEGIN IMMEDIATE") }
        // Bounded: an application whose clock runs ahead may queue more between two rounds; the last round's
        // clamp (if any) stays in the batch's transaction.
        for attempt in 0..<16 {
            try database.execute("BEGIN IMMEDIATE")
            let now = clock()
            let clampedBefore = stamps.clamped
            do {
                try stamps.materialize(now: now)
                guard stamps.clamped > clampedBefore, attempt < 15 else { return }
                if attempt < 7, clock() - now > stamps.lastBound?.clampCommitMilliseconds ?? .max {
                    rollBack()
                    stamps.clamped = clampedBefore
                    continue
                }
                try database.execute("COMMIT")
            } catch {
                rollBack()
                throw error
            }
        }
    }

    private func rollBack() {
        try? database.execute("ROLLBACK")
        catalogSchemaVersion = -1
    }

    private func q(_ identifier: String) -> String { ChangeLogSchema.quote(identifier) }
}

/// The prepared statements for applying events of one shape.
private struct ApplyPlan {
    struct Shape: Hashable {
        var table: String
        var columns: [String]
        var keyCount: Int

        func matches(_ event: ChangeEvent) -> Bool {
            keyCount == event.keyCount && table == event.table && columns == event.columns
        }
    }

    /// The event values the upsert takes, when some of the event's columns were dropped here (nil: all).
    var valueIndices: [Int]?
    /// The local columns the upsert writes, and those it gives their DEFAULT (the event lacks them).
    var names: [String]
    var lacking: [(name: String, sql: String)]
    /// The event's columns whose fate here is unknown (`ColumnHistory.Fate.unknown`): kept aside, not written.
    var asideIndices: [Int]
    /// Writes the row clock if the event supersedes it (one change) or leaves it (none).
    var claimClock: SQLiteStatement
    var upsert: SQLiteStatement
    var delete: SQLiteStatement

    /// The values `upsert` binds for `event`.
    func values(of event: ChangeEvent) -> [SQLiteValue] {
        valueIndices.map { $0.map { event.values[$0] } } ?? event.values
    }
}

/// A row held aside by UNIQUE settlement: its latest version wants a value of a UNIQUE index that a row
/// with a later version holds. It stays in `__harmonylite___conflicts` until the value is free again.
public struct UniqueConflict: Equatable, Sendable, CustomStringConvertible {
    public var table: String
    /// The UNIQUE index: its columns, or its name when it has expressions.
    public var columns: String
    /// Keys as SQL literals.
    public var heldAsideKey: String
    public var heldAsideStamp: UInt64
    public var heldAsideWriter: UInt64
    public var holderKey: String
    public var holderStamp: UInt64
    public var holderWriter: UInt64

    public var description: String {
        "\(table) row \(heldAsideKey) is held aside: row \(holderKey) wrote later and holds its UNIQUE (\(columns)) value; it comes back when the value is free (\(ChangeLogSchema.conflicts))"
    }
}

extension SQLiteError {
    /// SQLite's "UNIQUE constraint failed" (SQLITE_CONSTRAINT_UNIQUE): a value another row holds.
    var isUniqueViolation: Bool { code == 19 && message.contains("UNIQUE constraint failed") }
}

/// An event that cannot be applied here, and why; `kind` says whether waiting can help.
public struct ApplyError: Error, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// This node's schema lacks the table (or refuses it), or the column: it may arrive with a migration.
        case schemaMissing
        /// The event's key is not the local table's primary key: the schemas differ.
        case keyMismatch
        /// SQLite refused the write (a constraint, a full disk, a busy database): `SQLiteError.code` says which.
        case database(Int32)

        /// As the dead-letter table keeps it.
        public var parkedKind: ParkedKind {
            switch self {
            case .schemaMissing: .schemaMissing
            case .keyMismatch: .keyMismatch
            case .database(let code): .database(code)
            }
        }
    }

    /// The table, its columns or its key differ here: waiting for a migration can help, retrying cannot.
    public var isSchemaMismatch: Bool { kind == .schemaMissing || kind == .keyMismatch }

    public var event: ChangeEvent
    public var kind: Kind
    public var reason: String

    public init(event: ChangeEvent, kind: Kind, reason: String) {
        self.event = event
        self.kind = kind
        self.reason = reason
    }

    public var description: String {
        "cannot apply change \(event.changeID) (\(event.operation == .delete ? "delete" : "upsert") of \(event.table)): \(reason)"
    }
}
