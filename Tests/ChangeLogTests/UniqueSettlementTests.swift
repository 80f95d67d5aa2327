import Foundation
import TestSupport
import Testing

@testable import ChangeEvents
@testable import ChangeLog
@testable import SQLiteKit

/// UNIQUE settlement, case by case (the rule: `HeldAsideRows`; the property over random cases:
/// `ConvergencePropertyTests`). Each case applies the same events in every order to a fresh database.
@Suite struct UniqueSettlementTests {
    let directory: TemporaryDirectory
    init() throws { directory = try TemporaryDirectory() }

    func app(_ path: String, _ sql: String) throws -> String {
        let result = try runCommand("/usr/bin/sqlite3", [path, "PRAGMA trusted_schema=OFF;" + sql])
        guard result.status == 0 else { throw TestFailure("sqlite3: \(result.output)") }
        return result.output
    }

    /// A fresh node with `schema` and `rows`, its change logs installed.
    func node(_ schema: String, _ rows: String = "", id: UInt64 = 9) throws -> (path: String, applier: ChangeApplier) {
        let path = directory.path + "/\(UUID().uuidString).db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL;" + schema + rows)
        let database = try SQLiteDatabase(existingPath: path)
        let installation = try ChangeLogInstaller.install(in: database, node: id)
        return (path, try ChangeApplier(database: database, catalog: installation.catalog))
    }

    static func upsert(_ table: String, _ columns: [String], _ values: [SQLiteValue], stamp: UInt64, writer: UInt64) -> ChangeEvent {
        ChangeEvent(changeID: 1, table: table, operation: .upsert, stamp: stamp << 16, writer: writer, columns: columns, values: values, keyCount: 1)
    }

    static func delete(_ table: String, _ key: SQLiteValue, stamp: UInt64, writer: UInt64) -> ChangeEvent {
        ChangeEvent(changeID: 1, table: table, operation: .delete, stamp: stamp << 16, writer: writer, columns: ["id"], values: [key], keyCount: 1)
    }

    /// Every order of `events`, each event in its own transaction, then all in one: the same end state.
    func everyOrder(_ events: [ChangeEvent], schema: String, rows: String = "", dump: String) throws -> Set<String> {
        var results: Set<String> = []
        for order in permutations(events.indices.map { $0 }) {
            let single = try node(schema, rows)
            for index in order { _ = try single.applier.apply([events[index]]) }
            results.insert(try app(single.path, dump))
            let grouped = try node(schema, rows)
            _ = try grouped.applier.apply(order.map { events[$0] })
            results.insert(try app(grouped.path, dump))
        }
        return results
    }

    func permutations(_ items: [Int]) -> [[Int]] {
        guard items.count > 1 else { return [items] }
        return items.indices.flatMap { index in
            permutations(Array(items[..<index] + items[(index + 1)...])).map { [items[index]] + $0 }
        }
    }

    static let conflicts = "SELECT '--', table_name, losing_key, columns, winning_key FROM __harmonylite___conflicts ORDER BY 2, 3;"

    /// Issue 19's first case: node 1 gives row 1 'u@x'; node 2 gives row 2 'u@x', then moves it to 'z@x'.
    /// Row 1's value is free in the latest versions, so every order ends with both rows and nothing aside.
    @Test func aValueFreedByALaterVersionLeavesNoRowAside() throws {
        let schema = "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT);"
        let columns = ["id", "email", "name"]
        let events = [
            Self.upsert("users", columns, [.integer(1), .text("u@x"), .text("ann")], stamp: 100, writer: 1),
            Self.upsert("users", columns, [.integer(2), .text("u@x"), .text("bob")], stamp: 101, writer: 2),
            Self.upsert("users", columns, [.integer(2), .text("z@x"), .text("bob")], stamp: 102, writer: 2),
        ]
        let results = try everyOrder(events, schema: schema, dump: "SELECT id, email FROM users ORDER BY id;" + Self.conflicts)
        #expect(results == ["1|u@x\n2|z@x\n"])
    }

    /// Issue 19's second case: seat 2 takes 'u'; seat 1 takes 'u' later, then is deleted. The delete is
    /// seat 1's latest version: it stays deleted, and seat 2 keeps 'u', whatever the order.
    @Test func aHeldAsideVersionNeverUndoesALaterDelete() throws {
        let schema = "CREATE TABLE seats(id INTEGER PRIMARY KEY, holder TEXT UNIQUE);"
        let rows = "INSERT INTO seats VALUES (1, 'a'), (2, 'b');"
        let events = [
            Self.upsert("seats", ["id", "holder"], [.integer(2), .text("u")], stamp: 100, writer: 2),
            Self.upsert("seats", ["id", "holder"], [.integer(1), .text("u")], stamp: 101, writer: 3),
            Self.delete("seats", .integer(1), stamp: 102, writer: 3),
        ]
        let results = try everyOrder(events, schema: schema, rows: rows, dump: "SELECT id, holder FROM seats ORDER BY id;" + Self.conflicts)
        #expect(results == ["2|u\n"])
    }

    /// Issue 19's third case: a partial UNIQUE index only concerns the rows inside its WHERE; the archived row
    /// is never touched, and the earlier of the two active rows is held aside.
    @Test func aPartialIndexNeverTouchesARowOutsideItsCondition() throws {
        let schema =
            "CREATE TABLE accounts(id INTEGER PRIMARY KEY, email TEXT, active INT); CREATE UNIQUE INDEX active_email ON accounts(email) WHERE active = 1;"
        let rows = "INSERT INTO accounts VALUES (1, 'u@x', 0);"
        let columns = ["id", "email", "active"]
        let events = [
            Self.upsert("accounts", columns, [.integer(2), .text("u@x"), .integer(1)], stamp: 100, writer: 1),
            Self.upsert("accounts", columns, [.integer(3), .text("u@x"), .integer(1)], stamp: 101, writer: 2),
        ]
        let results = try everyOrder(events, schema: schema, rows: rows, dump: "SELECT id, email, active FROM accounts ORDER BY id;" + Self.conflicts)
        #expect(results == ["1|u@x|0\n3|u@x|1\n--|accounts|2|email|3\n"])
    }

    /// Collated, expression and composite UNIQUE indexes find their holders as SQLite compares them.
    @Test(arguments: [
        (
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE UNIQUE INDEX t_v ON t(v COLLATE NOCASE);", [SQLiteValue.text("U@x")],
            [SQLiteValue.text("u@x")], "v"
        ),
        ("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE UNIQUE INDEX t_lower ON t(lower(v));", [.text("RED")], [.text("red")], "t_lower"),
        ("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, w INT, UNIQUE (v, w));", [.text("a"), .integer(1)], [.text("a"), .integer(1)], "v, w"),
    ])
    func everyKindOfIndexFindsItsHolder(schema: String, first: [SQLiteValue], second: [SQLiteValue], label: String) throws {
        let columns = ["id", "v", "w"].prefix(1 + first.count).map { $0 }
        let events = [
            Self.upsert("t", columns, [.integer(1)] + first, stamp: 100, writer: 1),
            Self.upsert("t", columns, [.integer(2)] + second, stamp: 101, writer: 2),
        ]
        let results = try everyOrder(events, schema: schema, dump: "SELECT id FROM t ORDER BY id;" + Self.conflicts)
        #expect(results == ["2\n--|t|1|\(label)|2\n"])
    }

    /// NULLs are distinct in SQLite's UNIQUE indexes: rows with a NULL in the index never conflict.
    @Test func nullsInACompositeIndexNeverConflict() throws {
        let schema = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, w INT, UNIQUE (v, w));"
        let events = [
            Self.upsert("t", ["id", "v", "w"], [.integer(1), .text("a"), .null], stamp: 100, writer: 1),
            Self.upsert("t", ["id", "v", "w"], [.integer(2), .text("a"), .null], stamp: 101, writer: 2),
        ]
        let results = try everyOrder(events, schema: schema, dump: "SELECT id FROM t ORDER BY id;" + Self.conflicts)
        #expect(results == ["1\n2\n"])
    }

    /// A row held aside comes back once the application itself frees the value on this node: the node's own
    /// batches settle the tables they touched.
    @Test func aLocalWriteThatFreesTheValuePlacesTheRowAgain() throws {
        let schema = "CREATE TABLE seats(id INTEGER PRIMARY KEY, holder TEXT UNIQUE);"
        let replica = try node(schema, id: 3)
        _ = try replica.applier.apply([
            Self.upsert("seats", ["id", "holder"], [.integer(1), .text("u")], stamp: 100, writer: 1),
            Self.upsert("seats", ["id", "holder"], [.integer(2), .text("u")], stamp: 101, writer: 2),
        ])
        #expect(try app(replica.path, "SELECT id FROM seats;" + Self.conflicts) == "2\n--|seats|1|holder|2\n")
        #expect(try replica.applier.holdsRowsAside())
        try app(replica.path, "UPDATE seats SET holder = 'w' WHERE id = 2;")
        // The local write, as it comes back from the stream (its stamp is the row clock's now).
        let local = Self.upsert("seats", ["id", "holder"], [.integer(2), .text("w")], stamp: 0, writer: 3)
        let outcome = try replica.applier.apply([], localWrites: [local])
        #expect(outcome.placedAgain == 1)
        #expect(try app(replica.path, "SELECT id, holder FROM seats ORDER BY id;" + Self.conflicts) == "1|u\n2|w\n")
        #expect(try !replica.applier.holdsRowsAside())
    }

    /// A migration that drops the UNIQUE index frees the value: the row held aside comes back at the next
    /// transaction, even one that writes nothing (the applier runs one when it sees the schema change).
    @Test func aDroppedIndexPlacesTheRowsItHeldAside() throws {
        let schema = "CREATE TABLE seats(id INTEGER PRIMARY KEY, holder TEXT); CREATE UNIQUE INDEX seats_holder ON seats(holder);"
        let replica = try node(schema)
        _ = try replica.applier.apply([
            Self.upsert("seats", ["id", "holder"], [.integer(1), .text("u")], stamp: 100, writer: 1),
            Self.upsert("seats", ["id", "holder"], [.integer(2), .text("u")], stamp: 101, writer: 2),
        ])
        #expect(try app(replica.path, "SELECT id FROM seats;") == "2\n")
        try app(replica.path, "DROP INDEX seats_holder;")
        let outcome = try replica.applier.apply([])
        #expect(outcome.placedAgain == 1)
        #expect(try app(replica.path, "SELECT id, holder FROM seats ORDER BY id;" + Self.conflicts) == "1|u\n2|u\n")
    }

    /// A version newer than the one held aside (here: a delete) replaces it; the old one never comes back.
    @Test func aNewerVersionReleasesTheHeldAsideOne() throws {
        let schema = "CREATE TABLE seats(id INTEGER PRIMARY KEY, holder TEXT UNIQUE);"
        let replica = try node(schema)
        _ = try replica.applier.apply([
            Self.upsert("seats", ["id", "holder"], [.integer(1), .text("u")], stamp: 100, writer: 1),
            Self.upsert("seats", ["id", "holder"], [.integer(2), .text("u")], stamp: 101, writer: 2),
        ])
        _ = try replica.applier.apply([Self.upsert("seats", ["id", "holder"], [.integer(1), .text("v")], stamp: 102, writer: 1)])
        #expect(try app(replica.path, "SELECT id, holder FROM seats ORDER BY id;" + Self.conflicts) == "1|v\n2|u\n")
    }

    @Test func indexDefinitionsAreReadAsWritten() {
        #expect(IndexDefinition(parsing: "CREATE UNIQUE INDEX a ON t(email) WHERE active = 1") == IndexDefinition(terms: ["email"], condition: "active = 1"))
        #expect(
            IndexDefinition(parsing: "CREATE UNIQUE INDEX \"a(b\" ON \"t(\" (lower(name) COLLATE NOCASE DESC, \"x,y\", substr(z, 1, 2))")
                == IndexDefinition(terms: ["lower(name)", "\"x,y\"", "substr(z, 1, 2)"], condition: nil))
        #expect(
            IndexDefinition(parsing: "CREATE UNIQUE INDEX a ON t([we,ird] ASC, 'it''s')\n  where x in (1, 2)")
                == IndexDefinition(terms: ["[we,ird]", "'it''s'"], condition: "x in (1, 2)"))
        // SQLite keeps comments in the stored text: they neither cut the condition short nor hide it.
        #expect(
            IndexDefinition(parsing: "CREATE UNIQUE INDEX a ON t(email) /* only active */ WHERE active = 1 -- trailing")
                == IndexDefinition(terms: ["email"], condition: "active = 1"))
        #expect(
            IndexDefinition(parsing: "CREATE UNIQUE INDEX a ON t(e, -- first\n f /* x, y */) WHERE s = '--not a comment'")
                == IndexDefinition(terms: ["e", "f"], condition: "s = '--not a comment'"))
        #expect(
            IndexDefinition.tableBody("CREATE TABLE \"we(ird\" (a TEXT COLLATE NOCASE, b AS (lower(a))) STRICT")
                == "(a TEXT COLLATE NOCASE, b AS (lower(a))) STRICT")
        #expect(IndexDefinition(parsing: "CREATE UNIQUE INDEX a ON t(x") == nil)
        #expect(IndexDefinition(parsing: "CREATE UNIQUE INDEX a ON t(x) garbage") == nil)
    }
}

/// The capturer publishes a local write after the applier held it aside: it must publish the version, never
/// a delete (the row is only absent from its table; its row clock says it is alive).
@Suite struct HeldAsideCaptureTests {
    @Test func aLocalWriteHeldAsideBeforeItIsPublishedIsPublishedAsItsVersion() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/node2.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT UNIQUE);")
        let database = try SQLiteDatabase(existingPath: path)
        let installation = try ChangeLogInstaller.install(in: database, node: 2)
        let applier = try ChangeApplier(database: SQLiteDatabase(existingPath: path), catalog: installation.catalog)
        let shell = try runCommand("/usr/bin/sqlite3", [path, "INSERT INTO users VALUES (2, 'u@x');"])
        #expect(shell.status == 0)
        // Another node's row 1 takes 'u@x' with a later stamp before node 2's capturer publishes row 2.
        let later = ChangeEvent(
            changeID: 1, table: "users", operation: .upsert, stamp: UInt64(Int64.max / 2), writer: 1,
            columns: ["id", "email"], values: [.integer(1), .text("u@x")], keyCount: 1)
        _ = try applier.apply([later])
        let published = try ChangeReader(database: database, installation: installation).pending(after: 0, limit: 100).events
        #expect(published.count == 1)
        #expect(published.first?.operation == .upsert, "a held-aside row was published as \(String(describing: published.first?.operation))")
        #expect(published.first?.values == [.integer(2), .text("u@x")])
        #expect(published.first?.writer == 2)
    }
}
