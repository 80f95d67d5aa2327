import ChangeEvents
import Foundation
import TestSupport
import Testing

@testable import ChangeLog
@testable import SQLiteKit

/// The dead-letter table on a real database: parking moves the cursor in the same transaction, the list is
/// in (stream, sequence) order, retries are counted, and the watched values move when they should.
@Suite struct ParkedMessagesTests {
    let directory: TemporaryDirectory
    let db: SQLiteDatabase

    init() throws {
        directory = try TemporaryDirectory()
        let path = directory.path + "/a.db"
        try makeDatabase(path)
        db = try SQLiteDatabase(existingPath: path)
        _ = try ChangeLogInstaller.install(in: db, node: 1)
    }

    static func message(_ stream: String, _ sequence: UInt64) -> ParkedMessage {
        ParkedMessage(stream: stream, sequence: sequence, payload: [0, 1, 2, 0xFF], reason: "no table t", kind: .schemaMissing, attempts: 1)
    }

    @Test func parkingStoresTheMessageAndTheCursorTogether() throws {
        try ParkedMessages.park(Self.message("s-2", 7), cursor: ["s-1": 3, "s-2": 7], in: db)
        try ParkedMessages.park(Self.message("s-1", 4), cursor: ["s-1": 4, "s-2": 7], in: db)
        #expect(try ChangeApplier.storedCursor(in: db) == ["s-1": 4, "s-2": 7])
        let parked = try ParkedMessages.all(in: db)
        #expect(parked.map { "\($0.stream)/\($0.sequence)" } == ["s-1/4", "s-2/7"])
        #expect(parked[0].payload == [0, 1, 2, 0xFF] && parked[0].kind == .schemaMissing && parked[0].attempts == 1)
        #expect(parked[0].parkedAt.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression) != nil, "\(parked[0].parkedAt)")
    }

    @Test func aParkingThatFailsLeavesTheCursorWhereItWas() throws {
        try ParkedMessages.park(Self.message("s", 1), cursor: ["s": 1], in: db)
        try db.execute("CREATE TRIGGER refuse BEFORE INSERT ON __harmonylite___parked BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        #expect(throws: SQLiteError.self) { try ParkedMessages.park(Self.message("s", 2), cursor: ["s": 2], in: db) }
        #expect(try ChangeApplier.storedCursor(in: db) == ["s": 1])
        #expect(try ParkedMessages.count(in: db) == 1)
    }

    @Test func retriesAreCountedAndWhatAppliedIsRemoved() throws {
        try ParkedMessages.park(Self.message("s", 1), cursor: ["s": 1], in: db)
        try ParkedMessages.park(Self.message("s", 2), cursor: ["s": 2], in: db)
        try ParkedMessages.failedAgain(stream: "s", sequence: 1, reason: "still no table t", in: db)
        try ParkedMessages.remove(stream: "s", sequence: 2, in: db)
        let parked = try ParkedMessages.all(in: db)
        #expect(parked.count == 1 && parked[0].attempts == 2 && parked[0].reason == "still no table t")
    }

    @Test func theWatchedValuesMoveWithTheSchemaAndTheRequest() throws {
        let start = try ParkedMessages.watched(in: db)
        #expect(start.retryRequest == nil)
        try ParkedMessages.requestRetry(in: db)
        #expect(try ParkedMessages.watched(in: db).retryRequest == "1")
        try ParkedMessages.requestRetry(in: db)
        #expect(try ParkedMessages.watched(in: db).retryRequest == "2")
        #expect(try ParkedMessages.watched(in: db).schemaVersion == start.schemaVersion)
        try db.execute("CREATE TABLE later (id INTEGER PRIMARY KEY)")
        #expect(try ParkedMessages.watched(in: db).schemaVersion > start.schemaVersion)
    }

    @Test func aDatabaseNeverInstalledHasNoneParked() throws {
        let path = directory.path + "/plain.db"
        try makeDatabase(path)
        let plain = try SQLiteDatabase(existingPath: path)
        #expect(try ParkedMessages.all(in: plain).isEmpty && ParkedMessages.count(in: plain) == 0)
    }
}

/// Parking per table, not per message: one origin transaction writes a table this node has and one it lacks;
/// the first applies, the second waits parked on its own, and applies once the table exists here.
@Suite struct PerTableParkingTests {
    let directory: TemporaryDirectory
    init() throws { directory = try TemporaryDirectory() }

    func app(_ path: String, _ sql: String) throws -> String {
        let result = try runCommand("/usr/bin/sqlite3", [path, sql])
        guard result.status == 0 else { throw TestFailure("sqlite3: \(result.output)") }
        return result.output
    }

    @Test func aMissingTablesRowsAreParkedAloneAndTheRestApplies() throws {
        let path = directory.path + "/replica.db"
        try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE books(id INTEGER PRIMARY KEY, title TEXT);")
        let database = try SQLiteDatabase(existingPath: path)
        let applier = try ChangeApplier(database: database, catalog: ChangeLogInstaller.install(in: database, node: 2).catalog)
        let events: [ChangeEvent] = [
            ChangeEvent(
                changeID: 1, table: "books", operation: .upsert, stamp: 100 << 16, writer: 1, columns: ["id", "title"], values: [.integer(1), .text("Dune")],
                keyCount: 1),
            ChangeEvent(
                changeID: 2, table: "scratch", operation: .upsert, stamp: 100 << 16, writer: 1, columns: ["id", "note"], values: [.integer(7), .text("x")],
                keyCount: 1),
            ChangeEvent(
                changeID: 3, table: "books", operation: .upsert, stamp: 101 << 16, writer: 1, columns: ["id", "title"], values: [.integer(2), .text("Emma")],
                keyCount: 1),
        ]
        // Without sources (a parked message's retry of old), the missing table fails the whole batch.
        #expect(throws: ApplyError.self) { try applier.apply(events) }
        #expect(try app(path, "SELECT count(*) FROM books;") == "0\n")

        let source = ChangeApplier.EventSource(stream: "hl-1", sequence: 42, origin: 1, schemaHash: "h")
        let outcome = try applier.apply(events, cursor: ["hl-1": 42], sources: Array(repeating: source, count: events.count))
        #expect(outcome.applied == 2)
        #expect(try app(path, "SELECT id, title FROM books ORDER BY id;") == "1|Dune\n2|Emma\n")
        #expect(outcome.partlyParked.map { "\($0.stream) \($0.sequence) \($0.kind)" } == ["hl-1 42 schema-missing"])
        let parked = try ParkedMessages.all(in: database)
        #expect(parked.count == 1)
        #expect(try ChangeBatch(decoding: parked[0].payload).events.map(\.table) == ["scratch"], "only the missing table's rows are parked")
        #expect(try ChangeApplier.storedCursor(in: database) == ["hl-1": 42], "the cursor moved past the message in the same transaction")

        // The migration here: the parked rows apply.
        try app(path, "CREATE TABLE scratch(id INTEGER PRIMARY KEY, note TEXT);")
        let batch = try ChangeBatch(decoding: parked[0].payload)
        let retried = try applier.apply(batch.events, sources: Array(repeating: source, count: batch.events.count))
        #expect(retried.partlyParked.isEmpty && retried.applied == 1)
        #expect(try app(path, "SELECT id, note FROM scratch;") == "7|x\n")
    }

    /// The kind is stored as a word: every kind reads back as itself, and a word of another version is kept.
    @Test func everyKindReadsBackAsItselfAndAnUnknownWordIsKept() {
        let kinds: [ParkedKind] = [.undecodable, .forgedOrigin, .schemaMissing, .keyMismatch, .database(19), .columnsKeptAside, .other("from-a-newer-version")]
        for kind in kinds { #expect(ParkedKind(stored: kind.description) == kind, "\(kind)") }
        #expect(ParkedKind(stored: "database-x") == .other("database-x"))
        #expect(kinds.filter { !$0.isRetried } == [.forgedOrigin, .columnsKeptAside])
    }
}
