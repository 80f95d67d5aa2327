import Foundation
import TestSupport
import Testing

@testable import ChangeLog
@testable import SQLiteKit
@testable import Snapshots

/// A snapshot brings rows, never code or tables the live database lacks: a trigger that rewrites inserts,
/// a view, a foreign table, a trigger on our row clocks or a table of ours no snapshot carries are dropped
/// from the copy before it replaces the live content.
extension SnapshotTests {
    /// A snapshot of node 1 doctored with `sql` (as whoever could write the saving node's file), restored
    /// into node 2 (`liveSQL` run on it first); returns node 2's path and the restore's notes.
    func restoreDoctored(_ sql: String, liveSQL: String = "", name: String = "") throws -> (path: String, notes: [String]) {
        let source = try node("a\(name).db", "INSERT INTO books VALUES (1, 'Dune', NULL);", id: 1)
        let file = directory.path + "/snapshot\(name).db"
        _ = try SnapshotMaker.make(from: source, into: file, nodeID: 1)
        try app(file, sql)
        let (sha256, size) = try FileDigest.sha256(of: file)
        let metadata = SnapshotMetadata(cursor: [:], schemaHash: "", sha256: sha256, size: size, nodeID: 1, createdAt: 1)
        let target = try node("b\(name).db", liveSQL, id: 2)
        let outcome = try SnapshotRestorer.restore(file, metadata: metadata, into: target, nodeID: 2)
        return (target, outcome.liveVersionNotes)
    }

    @Test func aTriggerThatRewritesInsertsIsDroppedNotRestored() throws {
        let (target, notes) = try restoreDoctored(
            """
            CREATE TRIGGER evil AFTER INSERT ON books BEGIN UPDATE books SET title = 'pwned' WHERE id = NEW.id; END;
            CREATE VIEW shadow AS SELECT 'forged' AS title;
            """)
        #expect(notes.contains { $0.contains("trigger \"evil\"") }, "\(notes)")
        #expect(notes.contains { $0.contains("view \"shadow\"") }, "\(notes)")
        try app(target, "INSERT INTO books VALUES (7, 'Emma', NULL);")
        #expect(try app(target, "SELECT title FROM books WHERE id = 7;") == "Emma\n", "the application's insert stands")
        #expect(try app(target, "SELECT count(*) FROM sqlite_master WHERE name IN ('evil', 'shadow');") == "0\n")
        #expect(try app(target, "SELECT title FROM books WHERE id = 1;") == "Dune\n", "the rows are restored")
    }

    @Test func theLiveDatabasesOwnIdenticalTriggerIsKept() throws {
        let trigger = "CREATE TRIGGER stamp AFTER INSERT ON books BEGIN SELECT 1; END;"
        let (target, notes) = try restoreDoctored(trigger, liveSQL: trigger)
        #expect(notes.isEmpty, "\(notes)")
        #expect(try app(target, "SELECT count(*) FROM sqlite_master WHERE name = 'stamp';") == "1\n")
        // The same name with other SQL is not the live one: dropped.
        let other = try restoreDoctored(
            "CREATE TRIGGER stamp2 AFTER INSERT ON books BEGIN DELETE FROM books; END;",
            liveSQL: "CREATE TRIGGER stamp2 AFTER INSERT ON books BEGIN SELECT 1; END;", name: "2")
        #expect(other.notes.contains { $0.contains("\"stamp2\"") })
        #expect(try app(other.path, "INSERT INTO books VALUES (8, 'x', NULL); SELECT count(*) FROM books;") == "2\n")
    }

    @Test func aTableTheLiveDatabaseLacksAndStrayObjectsOfOursAreDropped() throws {
        let (target, notes) = try restoreDoctored(
            """
            CREATE TABLE planted(x); INSERT INTO planted VALUES (1);
            CREATE TABLE __harmonylite___meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
            CREATE TRIGGER clocks AFTER UPDATE ON __harmonylite__books_change_log BEGIN SELECT 1; END;
            CREATE TRIGGER __harmonylite__books_change_log_on_insert AFTER INSERT ON books BEGIN SELECT 1; END;
            """)
        #expect(notes.contains { $0.contains("table \"planted\"") }, "\(notes)")
        #expect(notes.contains { $0.contains("\"clocks\"") }, "\(notes)")
        #expect(notes.contains { $0.contains("__harmonylite__books_change_log_on_insert") }, "\(notes)")
        #expect(try app(target, "SELECT count(*) FROM sqlite_master WHERE name IN ('planted', 'clocks');") == "0\n")
        // Our own insert trigger is the one the install made, capturing again.
        #expect(try app(target, "SELECT sql LIKE '%SELECT 1%' FROM sqlite_master WHERE name = '__harmonylite__books_change_log_on_insert';") == "0\n")
        #expect(try app(target, "SELECT count(*) FROM __harmonylite___meta;") != "0\n", "the meta table is the live one's")
    }

    /// A new node whose database has no application table yet takes the snapshot's tables (never its code).
    @Test func anEmptyLiveDatabaseTakesTheSnapshotsTablesButNotItsTriggers() throws {
        let source = try node("a.db", "INSERT INTO books VALUES (1, 'Dune', NULL);", id: 1)
        try app(source, "CREATE TRIGGER t AFTER INSERT ON books BEGIN SELECT 1; END;")
        let file = directory.path + "/snapshot.db"
        let metadata = try SnapshotMaker.make(from: source, into: file, nodeID: 1)
        let target = directory.path + "/empty.db"
        try makeDatabase(target, "PRAGMA journal_mode=WAL;")
        let outcome = try SnapshotRestorer.restore(file, metadata: metadata, into: target, nodeID: 2)
        #expect(try app(target, "SELECT title FROM books;") == "Dune\n")
        #expect(outcome.liveVersionNotes.contains { $0.contains("trigger \"t\"") })
        #expect(try app(target, "SELECT count(*) FROM sqlite_master WHERE name = 't';") == "0\n")
    }
}
