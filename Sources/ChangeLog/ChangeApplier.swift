import ChangeEvents
import SQLiteKit

/// Applies other nodes' events: one SQLite transaction per batch, in the replica role (no trigger fires),
/// last-writer-wins per row on (stamp, writer) against the row clock, deletes leaving tombstones. Columns
/// a local table has but an event lacks (its origin did not have them yet) take their DEFAULT, as they have
/// on the origin: the whole row is last-writer-wins, so every node ends with the same row.
public final class ChangeApplier {
    private let database: SQLiteDatabase
    private var catalog: TableCatalog
    private var statements: [String: SQLiteStatement] = [:]
    private var plans: [ApplyPlan.Shape: ApplyPlan] = [:]
    /// The plan of the previous event: a batch is mostly one shape after another, and comparing a few
    /// names costs less than hashing them all for the dictionary.
    private var lastPlan: (shape: ApplyPlan.Shape, plan: ApplyPlan)?
    /// Tables whose row-clock table this applier has made sure exists.
    private var clockTables: Set<String> = []
    /// The `schema_version` the catalog was read at (-1: given, not read).
    private var catalogSchemaVersion: Int64 = -1
    /// Local writes' stamps are written into the row clocks before a batch compares with them.
    private let stamps: StampMaterializer
    /// The rows of local writes not stamped yet, for `notYetHeld`.
    private var pendingRows = PendingRows()

    public struct Outcome: Equatable, Sendable {
        public var applied = 0
        /// Events older than what the row already holds (or our own): nothing to do.
        public var superseded = 0
        /// UNIQUE conflicts settled (each also in `__harmonylite___conflicts`).
        public var conflicts: [UniqueConflict] = []
    }

    /// Upserts that met a UNIQUE value held by another row: their own row was vacated, and they are
    /// written again once the rest of the batch is (the other row may move away: a swap, a cycle).
    private var displaced: [(event: ChangeEvent, plan: ApplyPlan)] = []

    /// Puts `database` in the replica role (`SQLiteDatabase.enterReplicaRole`): from now on no trigger
    /// and no foreign-key action fires on this connection, so replicated rows are written as they arrived
    /// and our capture triggers do not capture them.
    public init(database: SQLiteDatabase, catalog: TableCatalog) throws(SQLiteError) {
        try database.enterReplicaRole()
        self.database = database
        self.catalog = catalog
        stamps = StampMaterializer(database: database)
    }

    /// Applies `events` atomically, storing `cursor` (stream → last sequence) and `streams` (stream →
    /// identity, see `StreamIdentities`) in the same transaction. On any failure nothing is applied and the
    /// error names the event.
    public func apply(_ events: [ChangeEvent], cursor: [String: UInt64] = [:], streams: [String: UInt64] = [:]) throws -> Outcome {
        try database.execute("BEGIN IMMEDIATE")
        displaced.removeAll()
        do {
            // A migration since the last batch makes prepared plans name columns that may be gone.
            try refreshCatalog()
            try stamps.materialize()
            var outcome = Outcome()
            for event in events {
                let applied: Bool
                do {
                    applied = try apply(event)
                } catch let error as SQLiteError {
                    throw ApplyError(event: event, kind: .database(error.code), reason: "\(error)")
                }
                if applied { outcome.applied += 1 } else { outcome.superseded += 1 }
            }
            let waiting = displaced
            displaced.removeAll()
            for (event, plan) in waiting {
                do {
                    outcome.conflicts += try writeDisplaced(event, plan)
                } catch let error as SQLiteError {
                    throw ApplyError(event: event, kind: .database(error.code), reason: "\(error)")
                }
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
        try pendingRows.update(from: stamps.queue, in: database)
        var clocks: [String: SQLiteStatement] = [:]
        return try batches.map { events in try notYetHeld(events, clocks: &clocks) }
    }

    private func notYetHeld(_ events: [ChangeEvent], clocks: inout [String: SQLiteStatement]) throws -> [ChangeEvent] {
        var newer: [ChangeEvent] = []
        for event in events {
            guard let table = try table(named: event.table) else {
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
                statement = try self.statement("SELECT \(q(ChangeLogSchema.stampColumn)), \(q(ChangeLogSchema.nodeColumn)) FROM \(q(ChangeLogSchema.changeLog(of: table.name))) WHERE \(keyMatch)")
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
        try database.execute("BEGIN IMMEDIATE")
        displaced.removeAll()
        do {
            try stamps.materialize()
            var kept = 0
            for event in events {
                guard let tableID = tableIDs[event.table] else {
                    throw ApplyError(event: event, kind: .schemaMissing, reason: "table \(event.table) is not in the snapshot")
                }
                guard try apply(event) || holdsVersion(of: event) else { continue }
                kept += 1
                let key = Array(event.key)
                let keyColumns = (1...key.count).map { ChangeLogSchema.keyColumn($0) }
                try statement("INSERT INTO \(q(ChangeLogSchema.globalLog)) (table_id, \(keyColumns.joined(separator: ", "))) VALUES (?\(String(repeating: ", ?", count: key.count)))")
                    .run([.integer(tableID)] + key)
            }
            let waiting = displaced
            displaced.removeAll()
            for (event, plan) in waiting { _ = try writeDisplaced(event, plan) }
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
        let clock = try statement("SELECT \(q(ChangeLogSchema.stampColumn)), \(q(ChangeLogSchema.nodeColumn)) FROM \(q(ChangeLogSchema.changeLog(of: table.name))) WHERE \(keyMatch)")
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
        switch event.operation {
        case .upsert:
            do {
                try plan.upsert.run(plan.values(of: event))
            } catch {
                guard error.isUniqueViolation else { throw error }
                try plan.delete.run(Array(event.key))
                displaced.append((event, plan))
            }
        case .delete: try plan.delete.run(Array(event.key))
        }
        return true
    }

    /// Writes an upsert that met a UNIQUE value held by another row, once the rest of the batch is written.
    /// If a row still holds the value, last-writer-wins decides between the two rows as it does between
    /// two versions of one row: the later (stamp, writer) keeps the value, the other row is removed on this
    /// node (every node decides the same from the same stamps, so all converge), and what lost is kept in
    /// `__harmonylite___conflicts` — never dropped silently.
    private func writeDisplaced(_ event: ChangeEvent, _ plan: ApplyPlan) throws -> [UniqueConflict] {
        var conflicts: [UniqueConflict] = []
        for _ in 0..<8 {  // one round per UNIQUE constraint the row meets
            do {
                try plan.upsert.run(plan.values(of: event))
                return conflicts
            } catch {
                guard error.isUniqueViolation, let holder = try uniqueHolder(of: event, violation: error) else { throw error }
                let conflict = UniqueConflict(
                    table: event.table, columns: holder.columns,
                    incomingKey: Array(event.key), incomingStamp: event.stamp, incomingWriter: event.writer,
                    holderKey: holder.key, holderStamp: holder.stamp, holderWriter: holder.writer)
                conflicts.append(conflict)
                if conflict.incomingWins {
                    try record(conflict, losingValues: holder.values, losingColumns: holder.allColumns)
                    try plan.delete.run(holder.key)
                } else {
                    try record(conflict, losingValues: event.values, losingColumns: event.columns)
                    return conflicts
                }
            }
        }
        throw ApplyError(event: event, kind: .database(19), reason: "still meets UNIQUE values after settling 8 conflicts")
    }

    private struct Holder {
        var columns: [String]
        var key: [SQLiteValue]
        var stamp: UInt64
        var writer: UInt64
        var allColumns: [String]
        var values: [SQLiteValue]
    }

    /// The row that holds the UNIQUE value `event` met, from SQLite's "UNIQUE constraint failed: t.a, t.b".
    private func uniqueHolder(of event: ChangeEvent, violation: SQLiteError) throws -> Holder? {
        guard let table = catalog.table(named: event.table), let list = violation.message.split(separator: ":", maxSplits: 1).last else { return nil }
        let columns = list.split(separator: ",").map { $0.trimmingSpaces.split(separator: ".", maxSplits: 1).last.map(String.init) ?? "" }
        var match: [String] = []
        var values: [SQLiteValue] = []
        for column in columns {
            guard let index = event.columns.firstIndex(of: column) else { return nil }
            match.append("\(q(column)) = ?")
            values.append(event.values[index])
        }
        let keyNames = table.primaryKey.map(\.name)
        let allColumns = table.columns.map(\.name)
        let rows = try database.prepare("SELECT \((keyNames + allColumns).map(q).joined(separator: ", ")) FROM \(q(table.name)) WHERE \(match.joined(separator: " AND ")) LIMIT 1").all(values)
        guard let row = rows.first else { return nil }
        let key = Array(row.prefix(keyNames.count))
        let clock = try database.prepare("SELECT \(q(ChangeLogSchema.stampColumn)), \(q(ChangeLogSchema.nodeColumn)) FROM \(q(ChangeLogSchema.changeLog(of: table.name))) WHERE "
            + keyNames.map { "\(q($0)) = ?" }.joined(separator: " AND ")).all(key).first
        var stamp: UInt64 = 0, writer: UInt64 = 0
        if case .integer(let s) = clock?[0] { stamp = UInt64(bitPattern: s) }
        if case .integer(let w) = clock?[1] { writer = UInt64(bitPattern: w) }
        return Holder(columns: columns, key: key, stamp: stamp, writer: writer, allColumns: allColumns, values: Array(row.dropFirst(keyNames.count)))
    }

    private func record(_ conflict: UniqueConflict, losingValues: [SQLiteValue], losingColumns: [String]) throws {
        let losing = zip(losingColumns, losingValues).map { "\($0)=\($1.sqlLiteral)" }.joined(separator: ", ")
        let lost = conflict.incomingWins
            ? (conflict.holderKey, conflict.holderStamp, conflict.holderWriter, conflict.incomingKey, conflict.incomingStamp, conflict.incomingWriter)
            : (conflict.incomingKey, conflict.incomingStamp, conflict.incomingWriter, conflict.holderKey, conflict.holderStamp, conflict.holderWriter)
        try statement("INSERT INTO \(q(ChangeLogSchema.conflicts)) (table_name, columns, losing_key, losing_values, losing_stamp, losing_writer, winning_key, winning_stamp, winning_writer, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .run([.text(conflict.table), .text(conflict.columns.joined(separator: ", ")), .text(lost.0.map(\.sqlLiteral).joined(separator: ", ")),
                  .text(losing), .integer(Int64(bitPattern: lost.1)), .integer(Int64(bitPattern: lost.2)),
                  .text(lost.3.map(\.sqlLiteral).joined(separator: ", ")), .integer(Int64(bitPattern: lost.4)), .integer(Int64(bitPattern: lost.5)),
                  .text("UNIQUE (\(conflict.columns.joined(separator: ", "))) held by two rows: the later write keeps it")])
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
            throw ApplyError(event: event, kind: .schemaMissing, reason: "table \(event.table) is not replicated here (missing, or refused: see the capturer's log)")
        }
        let keyNames = table.primaryKey.map(\.name)
        guard Array(event.columns.prefix(event.keyCount)) == keyNames else {
            throw ApplyError(event: event, kind: .keyMismatch, reason: "its key (\(event.columns.prefix(event.keyCount).joined(separator: ", "))) is not the local primary key (\(keyNames.joined(separator: ", ")))")
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
        for (index, column) in event.columns.enumerated() {
            if local.contains(column) {
                written.append((index, column))
                continue
            }
            switch try ColumnHistory.fate(of: column, in: table.name, database: database) {
            case .dropped?: continue
            case .renamed(let name)? where local.contains(name): written.append((index, name))
            default:
                throw ApplyError(event: event, kind: .schemaMissing, reason: "column \(column) does not exist in the local table \(table.name) (schemas differ)")
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
        let lacking = table.columns.filter { !names.contains($0.name) }.map { "\(q($0.name)) = \($0.defaultSQL ?? "NULL")" }
        let conflict = "DO UPDATE SET " + (names.map { "\(q($0)) = excluded.\(q($0))" } + lacking).joined(separator: ", ")
        let clockColumns = (keyNames.map(q) + [q(ChangeLogSchema.stampColumn), q(ChangeLogSchema.nodeColumn), q(ChangeLogSchema.deletedColumn)]).joined(separator: ", ")
        let clockPlaceholders = Array(repeating: "?", count: keyNames.count + 3).joined(separator: ", ")
        let stamp = q(ChangeLogSchema.stampColumn), node = q(ChangeLogSchema.nodeColumn), deleted = q(ChangeLogSchema.deletedColumn)
        let supersedes = StampOrder.supersedes(stamp: "excluded.\(stamp)", writer: "excluded.\(node)", over: stamp, node)
        let plan = ApplyPlan(
            valueIndices: written.count == event.columns.count ? nil : written.map(\.index),
            claimClock: try database.prepare(
                "INSERT INTO \(log) (\(clockColumns)) VALUES (\(clockPlaceholders)) ON CONFLICT (\(keyNames.map(q).joined(separator: ", "))) "
                    + "DO UPDATE SET \(stamp) = excluded.\(stamp), \(node) = excluded.\(node), \(deleted) = excluded.\(deleted) WHERE \(supersedes)"),
            upsert: try database.prepare("INSERT INTO \(q(table.name)) (\(columns)) VALUES (\(placeholders)) ON CONFLICT (\(keyNames.map(q).joined(separator: ", "))) \(conflict)"),
            delete: try database.prepare("DELETE FROM \(q(table.name)) WHERE \(keyMatch)")
        )
        plans[shape] = plan
        lastPlan = (shape, plan)
        return plan
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
    private func refreshCatalog() throws(SQLiteError) {
        let version = try database.scalarInteger("PRAGMA schema_version")
        guard version != catalogSchemaVersion else { return }
        statements.removeAll()
        plans.removeAll()
        lastPlan = nil
        clockTables.removeAll()
        catalog = try TableCatalog.read(database)
        catalogSchemaVersion = version
    }

    /// Rolls the transaction back, and with it what this applier did for the schema in it (row-clock tables
    /// it created): the next batch reads the schema again instead of counting on them.
    private func rollBack() {
        try? database.execute("ROLLBACK")
        catalogSchemaVersion = -1
    }

    private func statement(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let cached = statements[sql] { return cached }
        let prepared = try database.prepare(sql)
        statements[sql] = prepared
        return prepared
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
    /// Writes the row clock if the event supersedes it (one change) or leaves it (none).
    var claimClock: SQLiteStatement
    var upsert: SQLiteStatement
    var delete: SQLiteStatement

    /// The values `upsert` binds for `event`.
    func values(of event: ChangeEvent) -> [SQLiteValue] {
        valueIndices.map { $0.map { event.values[$0] } } ?? event.values
    }
}

/// Two rows that wanted the same UNIQUE value: the later (stamp, writer) keeps it, the other row is removed.
public struct UniqueConflict: Equatable, Sendable, CustomStringConvertible {
    public var table: String
    public var columns: [String]
    public var incomingKey: [SQLiteValue]
    public var incomingStamp: UInt64
    public var incomingWriter: UInt64
    public var holderKey: [SQLiteValue]
    public var holderStamp: UInt64
    public var holderWriter: UInt64

    /// The same order `ChangeEvent.supersedes` uses.
    public var incomingWins: Bool {
        incomingStamp != holderStamp ? incomingStamp > holderStamp : incomingWriter > holderWriter
    }

    public var description: String {
        let winner = incomingWins ? incomingKey : holderKey, loser = incomingWins ? holderKey : incomingKey
        return "\(table) rows \(winner) and \(loser) both had the UNIQUE (\(columns.joined(separator: ", "))) value: \(winner) wrote later and keeps it, \(loser) is removed (its values are in \(ChangeLogSchema.conflicts))"
    }
}

extension SQLiteError {
    /// SQLite's "UNIQUE constraint failed" (SQLITE_CONSTRAINT_UNIQUE): a value another row holds.
    var isUniqueViolation: Bool { code == 19 && message.contains("UNIQUE constraint failed") }
}


extension Substring {
    var trimmingSpaces: Substring {
        var result = self
        while result.first == " " { result = result.dropFirst() }
        while result.last == " " { result = result.dropLast() }
        return result
    }
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
    }

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
