import TestSupport
import Foundation
import Testing

@testable import ChangeEvents
@testable import ChangeLog
@testable import SQLiteKit
@testable import Snapshots

/// Making, verifying and restoring snapshot files, with the application's writes made by the sqlite3 shell.
@Suite struct SnapshotTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    static let schema = "CREATE TABLE books(id INTEGER PRIMARY KEY, title TEXT, cover BLOB);"

    func node(_ name: String, _ sql: String, id: UInt64) throws -> String {
        let path = directory.path + "/" + name
        try makeDatabase(path, "PRAGMA journal_mode=WAL;" + Self.schema)
        _ = try ChangeLogInstaller.open(path, node: id)
        try app(path, sql)
        return path
    }

    @discardableResult
    func app(_ path: String, _ sql: String) throws -> String {
        let result = try runCommand("/usr/bin/sqlite3", ["-cmd", ".timeout 5000", path, "PRAGMA trusted_schema=OFF;" + sql])
        guard result.status == 0 else { throw TestFailure("sqlite3: \(result.output)") }
        return result.output
    }

    @Test func snapshotHasTheDataAndCursorButNoneOfOurObjects() throws {
        let source = try node("a.db", "INSERT INTO books VALUES (1, 'Dune', x'00ff00'), (2, 'Emma', NULL);", id: 1)
        let (db, installation) = try ChangeLogInstaller.open(source, node: 1)
        _ = try ChangeApplier(database: db, catalog: installation.catalog).apply([], cursor: ["harmonylite-changes-1": 41])
        let file = directory.path + "/snapshot.db"
        let metadata = try SnapshotMaker.make(from: source, into: file, nodeID: 1)
        #expect(metadata.cursor == ["harmonylite-changes-1": 41])
        #expect(metadata.schemaHash == installation.schemaHash)
        #expect(metadata.size == Int64(try FileManager.default.attributesOfItem(atPath: file)[.size] as! Int))
        #expect(try app(file, "SELECT count(*) FROM sqlite_master WHERE name LIKE '%harmonylite%';") == "0\n")
        #expect(try app(file, "SELECT id, title, hex(cover) FROM books ORDER BY id;") == "1|Dune|00FF00\n2|Emma|\n")
        #expect(try SnapshotMetadata(decoding: metadata.encoded()) == metadata)
        try SnapshotRestorer.verify(file, metadata: metadata)
    }

    @Test func corruptedSnapshotIsRefusedAndTheDatabaseKept() throws {
        let source = try node("a.db", "INSERT INTO books VALUES (1, 'Dune', NULL);", id: 1)
        let file = directory.path + "/snapshot.db"
        let metadata = try SnapshotMaker.make(from: source, into: file, nodeID: 1)
        let target = try node("b.db", "INSERT INTO books VALUES (9, 'mine', NULL);", id: 2)
        // One byte flipped in the middle of the file.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        bytes[bytes.count / 2] ^= 0x5a
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        #expect {
            try SnapshotRestorer.restore(file, metadata: metadata, into: target, nodeID: 2)
        } throws: { "\($0)".contains("SHA-256") && "\($0)".contains("refused") }
        #expect(try app(target, "SELECT id, title FROM books;") == "9|mine\n")
    }

    /// The restore replaces the content through the backup API while another process has the database
    /// open; this node's unpublished change survives, with its stamp, queued for publishing again.
    @Test func restoreKeepsUnpublishedLocalChanges() throws {
        let source = try node("a.db", "INSERT INTO books VALUES (1, 'Dune', NULL), (2, 'Emma', NULL);", id: 1)
        let file = directory.path + "/snapshot.db"
        let metadata = try SnapshotMaker.make(from: source, into: file, nodeID: 1)
        let target = try node("b.db", "INSERT INTO books VALUES (9, 'never published', NULL); DELETE FROM books WHERE id = 9; INSERT INTO books VALUES (7, 'unpublished', NULL);", id: 2)
        let targetDB = try SQLiteDatabase(existingPath: target)
        _ = try targetDB.transaction { () throws(SQLiteError) -> Int in try StampMaterializer(database: targetDB).materialize() }
        let stampBefore = try app(target, "SELECT __harmonylite__hlc FROM __harmonylite__books_change_log WHERE id = 7;")
        #expect(!stampBefore.isEmpty)
        let reader = try SQLiteDatabase(existingPath: target)
        _ = try reader.scalarInteger("SELECT count(*) FROM books")
        let outcome = try SnapshotRestorer.restore(file, metadata: metadata, into: target, nodeID: 2)
        #expect(outcome.keptLocalChanges == 2)
        #expect(try app(target, "SELECT group_concat(id || ':' || title) FROM books;") == "1:Dune,2:Emma,7:unpublished\n")
        #expect(try app(target, "SELECT __harmonylite__hlc FROM __harmonylite__books_change_log WHERE id = 7;") == stampBefore)
        #expect(try reader.scalarInteger("SELECT count(*) FROM books") == 3)
        let (db, installation) = try ChangeLogInstaller.open(target, node: 2)
        let pending = try ChangeReader(database: db, installation: installation).pending(after: 0, limit: 100).events
        #expect(Set(pending.map { "\($0.operation)\($0.key.first!)" }) == ["upsert\(SQLiteValue.integer(7))", "delete\(SQLiteValue.integer(9))"])
        #expect(try app(target, "PRAGMA journal_mode;") == "wal\n")
    }
}

/// When a node must restore before applying anything: HarmonyLite's conditions, without its off-by-one.
@Test func restoreDecisionFollowsTheSeqMapAndTheStreams() {
    struct Unreadable: Error {}
    let cursor: [String: UInt64] = ["harmonylite-changes-1": 10]
    #expect(RestoreDecision.reason(seqMap: .success(nil), cursor: cursor, firstSequences: [:]) == "there is no seq map")
    #expect(RestoreDecision.reason(seqMap: .failure(Unreadable()), cursor: cursor, firstSequences: [:])?.hasPrefix("the seq map cannot be read") == true)
    // The stream still holds message 11, the next one: no gap (HarmonyLite restored here too).
    #expect(RestoreDecision.reason(seqMap: .success(cursor), cursor: cursor, firstSequences: ["harmonylite-changes-1": 11]) == nil)
    #expect(RestoreDecision.reason(seqMap: .success(cursor), cursor: cursor, firstSequences: ["harmonylite-changes-1": 12])
        == "harmonylite-changes-1 starts at message 12, past this node's position 10")
    // A shard this node never consumed, whose stream lost its first messages.
    #expect(RestoreDecision.reason(seqMap: .success(cursor), cursor: cursor, firstSequences: ["harmonylite-changes-2": 5]) != nil)
    #expect(RestoreDecision.reason(seqMap: .success(cursor), cursor: cursor, firstSequences: ["harmonylite-changes-2": 1]) == nil)
}
