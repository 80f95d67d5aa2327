import Foundation
import SQLiteKit
import TestSupport
import Testing

@testable import ChangeLog

/// Databases upstream HarmonyLite (Go) managed, captured from its binary (`Tests/Fixtures/upstream`).
enum UpstreamFixtures {
    static var directory: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/upstream").path
    }

    /// A copy of `name` in `directory` (a test never writes the fixture itself).
    static func copy(_ name: String, to directory: TemporaryDirectory, as target: String? = nil) throws -> String {
        let path = directory.path + "/" + (target ?? name)
        try FileManager.default.copyItem(atPath: Self.directory + "/" + name, toPath: path)
        return path
    }
}

/// Everything in sqlite_master, to show a refused takeover wrote nothing.
private func schemaDump(_ path: String) throws -> String {
    let result = try runCommand(
        "/usr/bin/sqlite3", [path, "SELECT type, name, sql FROM sqlite_master ORDER BY name; SELECT count(*) FROM \"__harmonylite___change_log_global\";"])
    return result.output
}

@Suite struct UpstreamTakeoverTests {
    /// Upstream's unpublished changes (insert 10, insert 11, update 1) become entries of our queue in
    /// their order, upstream's objects are gone, its seq map is our cursor, and the application's next
    /// write (the sqlite3 shell) is captured by our triggers.
    @Test func pendingChangesAreQueuedAndTheCursorCarriesOver() throws {
        let directory = try TemporaryDirectory()
        let path = try UpstreamFixtures.copy("pending-changes.db", to: directory)
        let seqMap = try UpstreamFixtures.copy("pending-changes-seq-map.cbor", to: directory)
        let (database, installation) = try ChangeLogInstaller.open(path, node: 1, upstreamSeqMap: seqMap)
        #expect(installation.notes.contains { $0.contains("took over upstream HarmonyLite's change log: 3 change(s)") })
        #expect(try UpstreamTakeover.detect(database) == false)
        let queue = try database.rows(
            "SELECT t.name, g.k1, g.at IS NOT NULL FROM \"__harmonylite___change_log_global\" g JOIN \"__harmonylite___tables\" t ON t.id = g.table_id ORDER BY g.id"
        )
        #expect(queue == [["books", "10", "1"], ["books", "11", "1"], ["books", "1", "1"]])
        #expect(try ChangeApplier.storedCursor(in: database) == ["harmonylite-changes-1": 4])
        let logs = try database.rows("SELECT name FROM sqlite_master WHERE name LIKE '%books_change_log%' ORDER BY name").compactMap { $0.first ?? nil }
        #expect(
            logs == [
                "__harmonylite__books_change_log", "__harmonylite__books_change_log_on_delete",
                "__harmonylite__books_change_log_on_insert", "__harmonylite__books_change_log_on_update",
            ])
        // The row clocks of the queued rows carry upstream's capture times (ms << 16), not now.
        let stamps = try database.rows("SELECT id, \"__harmonylite__hlc\" >> 16 FROM \"__harmonylite__books_change_log\" ORDER BY id")
        #expect(stamps.map { $0[0] } == ["1", "10", "11"])
        #expect(stamps.allSatisfy { Int64($0[1] ?? "") ?? 0 > 1_700_000_000_000 && Int64($0[1] ?? "") ?? 0 < 1_900_000_000_000 })
        let write = try runCommand("/usr/bin/sqlite3", [path, "INSERT INTO books (id, title) VALUES (30, 'after');"])
        #expect(write.status == 0, "\(write.output)")
        #expect(try database.scalarInteger("SELECT count(*) FROM \"__harmonylite___change_log_global\" WHERE k1 = 30") == 1)
        // A second start finds nothing of upstream's and changes nothing.
        let again = try ChangeLogInstaller.install(in: database, node: 1, upstreamSeqMap: seqMap)
        #expect(!again.notes.contains { $0.contains("took over") })
    }

    /// A change named in upstream's global log that is not pending in its table's log: upstream itself
    /// would stop on it. Nothing is written, the message says what to do, and the application's writes
    /// keep working (upstream's triggers still capture them).
    @Test func aTakeoverThatCannotFinishLeavesTheDatabaseUntouched() throws {
        let directory = try TemporaryDirectory()
        let path = try UpstreamFixtures.copy("pending-changes.db", to: directory)
        _ = try runCommand("/usr/bin/sqlite3", [path, "UPDATE \"__harmonylite__books_change_log\" SET state = 1 WHERE val_id = 11;"])
        let before = try schemaDump(path)
        do {
            _ = try ChangeLogInstaller.open(path, node: 1, upstreamSeqMap: nil)
            Issue.record("the takeover should have been refused")
        } catch {
            #expect(error.message.contains("is not pending in its change log"))
            #expect(error.message.contains("left untouched"))
            #expect(error.message.contains("Start upstream HarmonyLite"))
        }
        #expect(try schemaDump(path) == before)
        let write = try runCommand("/usr/bin/sqlite3", [path, "INSERT INTO books (id, title) VALUES (31, 'still works');"])
        #expect(write.status == 0, "\(write.output)")
    }

    /// An unreadable seq map refuses the takeover too (consuming from a guessed cursor is not safe to do
    /// silently); the message says to move it away.
    @Test func anUnreadableSeqMapRefusesTheTakeover() throws {
        let directory = try TemporaryDirectory()
        let path = try UpstreamFixtures.copy("pending-changes.db", to: directory)
        let seqMap = directory.write("seq-map.cbor", "\u{7F}not cbor")
        let before = try schemaDump(path)
        #expect(throws: SQLiteError.self) { _ = try ChangeLogInstaller.open(path, node: 1, upstreamSeqMap: seqMap) }
        #expect(try schemaDump(path) == before)
    }

    /// Upstream creates its seq map empty and rewrites it in place without truncating: an empty file is
    /// an empty map and bytes after the first map are ignored.
    @Test func upstreamSeqMapsAreReadAsUpstreamReadsThem() throws {
        let directory = try TemporaryDirectory()
        let empty = directory.write("empty.cbor", "")
        #expect(try SeqMapFile.readUpstream(empty) == [:])
        #expect(throws: SeqMapFile.Corrupt.self) { _ = try SeqMapFile.read(empty) }
        let fixture = try Data(contentsOf: URL(fileURLWithPath: UpstreamFixtures.directory + "/pending-changes-seq-map.cbor"))
        let trailing = directory.path + "/trailing.cbor"
        try (fixture + Data([0x04, 0x00])).write(to: URL(fileURLWithPath: trailing))
        #expect(try SeqMapFile.readUpstream(trailing) == ["harmonylite-changes-1": 4])
        #expect(try SeqMapFile.readUpstream(directory.path + "/absent.cbor") == nil)
    }
}
