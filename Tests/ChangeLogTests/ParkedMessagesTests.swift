import TestSupport
import Foundation
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
        ParkedMessage(stream: stream, sequence: sequence, payload: [0, 1, 2, 0xFF], reason: "no table t", kind: "schema-missing", attempts: 1)
    }

    @Test func parkingStoresTheMessageAndTheCursorTogether() throws {
        try ParkedMessages.park(Self.message("s-2", 7), cursor: ["s-1": 3, "s-2": 7], in: db)
        try ParkedMessages.park(Self.message("s-1", 4), cursor: ["s-1": 4, "s-2": 7], in: db)
        #expect(try ChangeApplier.storedCursor(in: db) == ["s-1": 4, "s-2": 7])
        let parked = try ParkedMessages.all(in: db)
        #expect(parked.map { "\($0.stream)/\($0.sequence)" } == ["s-1/4", "s-2/7"])
        #expect(parked[0].payload == [0, 1, 2, 0xFF] && parked[0].kind == "schema-missing" && parked[0].attempts == 1)
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
