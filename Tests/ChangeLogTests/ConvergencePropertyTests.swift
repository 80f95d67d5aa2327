import Foundation
import TestSupport
import Testing

@testable import ChangeEvents
@testable import ChangeLog
@testable import SQLiteKit

/// The applier's invariant (DESIGN.md, "Data path and guarantees" 5): **a node's rows, row clocks and
/// conflict records are a function of the set of changes it applied** — not of their order, their grouping
/// into fetches, repeated deliveries, or the states the node passed through.
///
/// From a seed, a set of change events is generated over tables with every kind of UNIQUE index SQLite has
/// (plain, partial, collated, expression, composite with NULLs, two indexes on one table), with deletes, key
/// changes (a delete and a write with one stamp) and an application trigger. The same set is applied to fresh
/// real database files in many random orders and groupings; every result must be identical, and equal to an
/// oracle computed from the final versions alone: each row's latest (stamp, writer) version, then rows
/// placed by descending version, a row held aside when SQLite's own index refuses it (`ConvergenceOracle`).
///
/// CI runs a short form; the long form: `CONVERGENCE_SEEDS=200 CONVERGENCE_ORDERS=50 swift test --filter
/// ConvergencePropertyTests` (10,000 orders).
@Suite struct ConvergencePropertyTests {
    static let schema = """
        CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT);
        CREATE TABLE accounts(id INTEGER PRIMARY KEY, email TEXT, active INTEGER);
        CREATE UNIQUE INDEX accounts_active_email ON accounts(email) WHERE active = 1;
        CREATE TABLE people(id INTEGER PRIMARY KEY, handle TEXT);
        CREATE UNIQUE INDEX people_handle ON people(handle COLLATE NOCASE);
        CREATE TABLE tags(id INTEGER PRIMARY KEY, name TEXT);
        CREATE UNIQUE INDEX tags_lower_name ON tags(lower(name));
        CREATE TABLE slots(a TEXT, b INTEGER, owner TEXT, day INTEGER, PRIMARY KEY (a, b), UNIQUE (owner, day)) WITHOUT ROWID;
        CREATE TABLE seats(id INTEGER PRIMARY KEY, holder TEXT UNIQUE, code TEXT UNIQUE);
        CREATE TABLE gen(id INTEGER PRIMARY KEY, name TEXT, lname TEXT GENERATED ALWAYS AS (lower(name)) VIRTUAL);
        CREATE UNIQUE INDEX gen_lname ON gen(lname);
        CREATE TABLE rep(id INTEGER PRIMARY KEY, email TEXT UNIQUE ON CONFLICT REPLACE);
        CREATE TABLE ign(id INTEGER PRIMARY KEY, email TEXT UNIQUE ON CONFLICT IGNORE);
        CREATE TABLE rb(id INTEGER PRIMARY KEY, email TEXT UNIQUE ON CONFLICT ROLLBACK);
        CREATE TABLE actives(id INTEGER PRIMARY KEY, email TEXT, status TEXT COLLATE NOCASE);
        CREATE UNIQUE INDEX actives_email ON actives(email) /* active ones only */ WHERE status = 'active' -- a trailing comment
        ;
        """
    /// An application trigger: it must never fire for replicated rows (their effects arrive as rows of their own).
    static let applicationTrigger = """
        CREATE TABLE audit(n INTEGER PRIMARY KEY);
        CREATE TRIGGER users_audit AFTER INSERT ON users BEGIN INSERT OR IGNORE INTO audit VALUES (NEW.id); END;
        """

    static var seeds: Int { Int(ProcessInfo.processInfo.environment["CONVERGENCE_SEEDS"] ?? "") ?? 40 }
    static var orders: Int { Int(ProcessInfo.processInfo.environment["CONVERGENCE_ORDERS"] ?? "") ?? 12 }

    @Test func everyOrderAndGroupingGivesTheOraclesRows() throws {
        let directory = try TemporaryDirectory()
        let template = directory.path + "/template.db"
        try makeDatabase(template, Self.schema + Self.applicationTrigger)
        _ = try ChangeLogInstaller.install(in: SQLiteDatabase(existingPath: template), node: 99)
        let oracleTemplate = directory.path + "/oracle-template.db"
        try makeDatabase(oracleTemplate, Self.schema)
        let baseSeed = UInt64(ProcessInfo.processInfo.environment["CONVERGENCE_SEED"] ?? "") ?? 20261207
        // One real database file, emptied before each order (rows, row clocks, rows held aside): the same as a
        // fresh copy of the template, without the cost of opening one and preparing every statement again.
        let path = directory.path + "/trial.db"
        try FileManager.default.copyItem(atPath: template, toPath: path)
        let database = try SQLiteDatabase(existingPath: path)
        try database.execute("PRAGMA synchronous=OFF")
        let applier = try ChangeApplier(database: database, catalog: TableCatalog.read(database))
        let reset = (EventSetGenerator.tables.flatMap { [$0.name, ChangeLogSchema.changeLog(of: $0.name)] } + ["audit", ChangeLogSchema.conflicts])
            .map { "DELETE FROM \"\($0)\";" }.joined()
        var failures = 0
        for seedIndex in 0..<Self.seeds {
            let seed = baseSeed &+ UInt64(seedIndex)
            var rng = SeededGenerator(seed: seed)
            let events = EventSetGenerator.generate(using: &rng)
            let expected = try ConvergenceOracle.state(of: events, template: oracleTemplate, directory: directory.path)
            for order in 0..<Self.orders {
                try database.execute("BEGIN; \(reset) COMMIT;")
                var delivery = events.shuffled(using: &rng)
                // Redeliveries: some events arrive again later (a retry, a redelivered fetch).
                for _ in 0..<Int(rng.next() % 4) { delivery.append(events[Int(rng.next() % UInt64(events.count))]) }
                var index = 0
                var refused: String?
                while index < delivery.count, refused == nil {
                    let size = 1 + Int(rng.next() % 6)
                    do {
                        _ = try applier.apply(Array(delivery[index..<min(index + size, delivery.count)]))
                    } catch {
                        refused = "\(error)"
                    }
                    index += size
                }
                let state = try ConvergenceOracle.dump(database)
                if let refused {
                    failures += 1
                    if failures <= 3 { Issue.record("seed \(seed), order \(order): a group was refused: \(refused)") }
                } else if state != expected {
                    failures += 1
                    if failures <= 3 { Issue.record("seed \(seed), order \(order): \(state.difference(from: expected))") }
                }
                #expect(try database.scalarInteger("SELECT count(*) FROM audit") == 0, "an application trigger fired on apply (seed \(seed))")
            }
        }
        #expect(failures == 0, "\(failures) of \(Self.seeds * Self.orders) orders differed from the oracle")
    }
}

/// xorshift64*: deterministic from a seed, so a failure names what replays it.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }
}

/// Random change events over `ConvergencePropertyTests.schema`, with few keys and few values so that rows
/// meet each other's UNIQUE values often. Every (table, key) has distinct (stamp, writer) versions, as real
/// origins produce them; stamps collide across writers so the writer tie-break is exercised.
enum EventSetGenerator {
    struct Table {
        var name: String
        var keyColumns: [String]
        var columns: [String]
        var keys: [[SQLiteValue]]
        /// Values for the non-key columns.
        var values: [[SQLiteValue]]
    }

    static let emails: [SQLiteValue] = [.text("u@x"), .text("U@x"), .text("v@x"), .null]
    static let tables: [Table] = [
        Table(
            name: "users", keyColumns: ["id"], columns: ["email", "name"], keys: (1...4).map { [.integer($0)] },
            values: [emails, [.text("ann"), .text("bob")]]),
        Table(
            name: "accounts", keyColumns: ["id"], columns: ["email", "active"], keys: (1...4).map { [.integer($0)] },
            values: [emails, [.integer(0), .integer(1), .integer(1)]]),
        Table(
            name: "people", keyColumns: ["id"], columns: ["handle"], keys: (1...4).map { [.integer($0)] },
            values: [[.text("Ann"), .text("ann"), .text("bob"), .null]]),
        Table(
            name: "tags", keyColumns: ["id"], columns: ["name"], keys: (1...4).map { [.integer($0)] },
            values: [[.text("Red"), .text("RED"), .text("red"), .text("blue")]]),
        Table(
            name: "slots", keyColumns: ["a", "b"], columns: ["owner", "day"],
            keys: [[.text("x"), .integer(1)], [.text("x"), .integer(2)], [.text("y"), .integer(1)], [.text("Y"), .integer(1)]],
            values: [[.text("ann"), .text("bob"), .null], [.integer(1), .integer(2), .null]]),
        Table(
            name: "seats", keyColumns: ["id"], columns: ["holder", "code"], keys: (1...5).map { [.integer($0)] },
            values: [[.text("p"), .text("q"), .text("r")], [.text("A"), .text("B"), .null]]),
        // A UNIQUE index on a generated column; UNIQUE constraints with their own ON CONFLICT; a partial
        // index whose condition compares a NOCASE column, written with comments SQLite keeps in its text.
        Table(
            name: "gen", keyColumns: ["id"], columns: ["name"], keys: (1...4).map { [.integer($0)] },
            values: [[.text("Red"), .text("RED"), .text("blue")]]),
        Table(name: "rep", keyColumns: ["id"], columns: ["email"], keys: (1...4).map { [.integer($0)] }, values: [emails]),
        Table(name: "ign", keyColumns: ["id"], columns: ["email"], keys: (1...4).map { [.integer($0)] }, values: [emails]),
        Table(name: "rb", keyColumns: ["id"], columns: ["email"], keys: (1...4).map { [.integer($0)] }, values: [emails]),
        Table(
            name: "actives", keyColumns: ["id"], columns: ["email", "status"], keys: (1...4).map { [.integer($0)] },
            values: [emails, [.text("Active"), .text("ACTIVE"), .text("archived")]]),
    ]

    static func generate(using rng: inout SeededGenerator) -> [ChangeEvent] {
        var events: [ChangeEvent] = []
        var used: Set<[UInt64]> = []
        let count = 12 + Int(rng.next() % 30)
        var changeID: Int64 = 0
        func pick<T>(_ array: [T]) -> T { array[Int(rng.next() % UInt64(array.count))] }
        func version(_ tableIndex: Int, _ keyIndex: Int) -> (UInt64, UInt64) {
            while true {
                let stamp = (1_700_000_000_000 + (rng.next() % 12)) << 16
                let writer = 1 + rng.next() % 3
                if used.insert([UInt64(tableIndex), UInt64(keyIndex), stamp, writer]).inserted { return (stamp, writer) }
            }
        }
        func event(_ tableIndex: Int, _ keyIndex: Int, delete: Bool, stamp: UInt64, writer: UInt64) -> ChangeEvent {
            let table = tables[tableIndex]
            changeID += 1
            let key = table.keys[keyIndex]
            let values = delete ? key : key + table.values.map { pick($0) }
            return ChangeEvent(
                changeID: changeID, table: table.name, operation: delete ? .delete : .upsert, stamp: stamp, writer: writer,
                columns: delete ? table.keyColumns : table.keyColumns + table.columns, values: values,
                keyCount: table.keyColumns.count)
        }
        while events.count < count {
            let tableIndex = Int(rng.next() % UInt64(tables.count))
            let keyIndex = Int(rng.next() % UInt64(tables[tableIndex].keys.count))
            switch rng.next() % 10 {
            case 0, 1:
                let (stamp, writer) = version(tableIndex, keyIndex)
                events.append(event(tableIndex, keyIndex, delete: true, stamp: stamp, writer: writer))
            case 2:
                // A key change on the origin: the old key deleted and the new one written, one stamp.
                let other = (keyIndex + 1) % tables[tableIndex].keys.count
                let (stamp, writer) = version(tableIndex, keyIndex)
                guard used.insert([UInt64(tableIndex), UInt64(other), stamp, writer]).inserted else { continue }
                events.append(event(tableIndex, keyIndex, delete: true, stamp: stamp, writer: writer))
                events.append(event(tableIndex, other, delete: false, stamp: stamp, writer: writer))
            default:
                let (stamp, writer) = version(tableIndex, keyIndex)
                events.append(event(tableIndex, keyIndex, delete: false, stamp: stamp, writer: writer))
            }
        }
        return events
    }
}

/// What every node must hold after applying a set of events, computed from the final versions only, with
/// SQLite's own indexes deciding what conflicts (so partial, collated and expression indexes need no model).
enum ConvergenceOracle {
    struct State: Equatable {
        var rows: [String: [String]]
        var clocks: [String: [String]]
        /// Rows held aside: table, key, stamp, writer.
        var heldAside: [String]

        func difference(from expected: State) -> String {
            var lines: [String] = []
            for table in Set(rows.keys).union(expected.rows.keys).sorted() where rows[table] != expected.rows[table] {
                lines.append("\(table) rows \(rows[table] ?? []) expected \(expected.rows[table] ?? [])")
            }
            for table in Set(clocks.keys).union(expected.clocks.keys).sorted() where clocks[table] != expected.clocks[table] {
                lines.append("\(table) clocks \(clocks[table] ?? []) expected \(expected.clocks[table] ?? [])")
            }
            if heldAside != expected.heldAside { lines.append("held aside \(heldAside) expected \(expected.heldAside)") }
            return lines.joined(separator: "; ")
        }
    }

    static func isLater(_ a: ChangeEvent, than b: ChangeEvent) -> Bool { a.supersedes(stamp: b.stamp, writer: b.writer) }

    /// Rows are taken by (stamp, writer), then by their key's SQL text (two rows of one writer in one millisecond).
    static func isTakenFirst(_ a: ChangeEvent, before b: ChangeEvent) -> Bool {
        if (a.stamp, a.writer) != (b.stamp, b.writer) { return (a.stamp, a.writer) > (b.stamp, b.writer) }
        return a.key.map(\.sqlLiteral).joined(separator: ", ") > b.key.map(\.sqlLiteral).joined(separator: ", ")
    }

    static func state(of events: [ChangeEvent], template: String, directory: String) throws -> State {
        var final: [String: ChangeEvent] = [:]
        for event in events {
            let id = event.table + "|" + event.key.map(\.sqlLiteral).joined(separator: ", ")
            if let held = final[id], !isLater(event, than: held) { continue }
            final[id] = event
        }
        var clocks: [String: [String]] = [:]
        for event in final.values {
            clocks[event.table, default: []].append(
                (event.key.map(\.sqlLiteral) + ["\(Int64(bitPattern: event.stamp))", "\(event.writer)", event.operation == .delete ? "1" : "0"]).joined(
                    separator: "|"))
        }
        let path = directory + "/oracle.db"
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        try FileManager.default.copyItem(atPath: template, toPath: path)
        let database = try SQLiteDatabase(existingPath: path)
        var heldAside: [String] = []
        for event in final.values.filter({ $0.operation == .upsert }).sorted(by: { isTakenFirst($0, before: $1) }) {
            let columns = event.columns.map { "\"\($0)\"" }.joined(separator: ", ")
            let placeholders = Array(repeating: "?", count: event.values.count).joined(separator: ", ")
            // OR ABORT: a constraint's own ON CONFLICT (REPLACE, IGNORE, ROLLBACK) must not decide for the oracle.
            let statement = try database.prepare("INSERT OR ABORT INTO \(event.table) (\(columns)) VALUES (\(placeholders))")
            if let refusal = Result(catching: { () throws(SQLiteError) in try statement.run(event.values) }).failure {
                guard refusal.code & 0xff == 19 else { throw refusal }
                heldAside.append("\(event.table)|\(event.key.map(\.sqlLiteral).joined(separator: ", "))|\(Int64(bitPattern: event.stamp))|\(event.writer)")
            }
        }
        var state = try dumpRows(database)
        state.clocks = clocks.mapValues { $0.sorted() }
        state.heldAside = heldAside.sorted()
        return state
    }

    static let tables = EventSetGenerator.tables

    static func dumpRows(_ database: SQLiteDatabase) throws -> State {
        var rows: [String: [String]] = [:]
        for table in tables {
            let columns = (table.keyColumns + table.columns).map { "quote(\"\($0)\")" }.joined(separator: " || '|' || ")
            rows[table.name] = try database.rows("SELECT \(columns) FROM \(table.name)").map { $0[0] ?? "" }.sorted()
        }
        return State(rows: rows, clocks: [:], heldAside: [])
    }

    /// A node's state: its rows, its row clocks (tables never written have none) and its conflict records.
    static func dump(_ database: SQLiteDatabase) throws -> State {
        var state = try dumpRows(database)
        for table in tables {
            let log = ChangeLogSchema.changeLog(of: table.name)
            let columns =
                (table.keyColumns.map { "quote(\"\($0)\")" } + [
                    "\(ChangeLogSchema.stampColumn)", "\(ChangeLogSchema.nodeColumn)", "\(ChangeLogSchema.deletedColumn)",
                ])
                .joined(separator: " || '|' || ")
            let rows = try database.rows("SELECT \(columns) FROM \"\(log)\"").map { $0[0] ?? "" }.sorted()
            if !rows.isEmpty { state.clocks[table.name] = rows }
        }
        state.heldAside = try database.rows(
            "SELECT table_name || '|' || losing_key || '|' || losing_stamp || '|' || losing_writer FROM \(ChangeLogSchema.conflicts)"
        )
        .map { $0[0] ?? "" }.sorted()
        return state
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
