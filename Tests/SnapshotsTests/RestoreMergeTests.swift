import Foundation
import TestSupport
import Testing

@testable import ChangeEvents
@testable import ChangeLog
@testable import SQLiteKit
@testable import Snapshots

/// A restore keeps every row version the live database holds that is later than the snapshot's: writes
/// this node published and other nodes' writes it applied, whose messages the streams no longer hold.
extension SnapshotTests {
    /// What the capturer does once JetStream has acknowledged: the node's changes so far, as published,
    /// and the publish watermark moved past them.
    @discardableResult
    func publish(_ path: String, node id: UInt64) throws -> [ChangeEvent] {
        let (db, installation) = try ChangeLogInstaller.open(path, node: id)
        let pending = try ChangeReader(database: db, installation: installation).pending(after: try PublishWatermark.read(db), limit: .max)
        if let through = pending.throughID { try PublishWatermark.write(through, to: db) }
        return pending.events
    }

    /// Another node's events, applied here as the applier does.
    func deliver(_ events: [ChangeEvent], to path: String, node id: UInt64) throws {
        let (db, installation) = try ChangeLogInstaller.open(path, node: id)
        _ = try ChangeApplier(database: db, catalog: installation.catalog).apply(events)
    }

    /// A node whose database has `schema` (WAL, change logs installed).
    func node(_ name: String, schema: String, id: UInt64) throws -> String {
        let path = directory.path + "/" + name
        try makeDatabase(path, "PRAGMA journal_mode=WAL;" + schema)
        _ = try ChangeLogInstaller.open(path, node: id)
        return path
    }

    func restore(_ snapshot: (file: String, metadata: SnapshotMetadata), into path: String, node id: UInt64) throws -> SnapshotRestorer.Outcome {
        try SnapshotRestorer.restore(snapshot.file, metadata: snapshot.metadata, into: path, nodeID: id)
    }

    func snapshot(of path: String, node id: UInt64) throws -> (file: String, metadata: SnapshotMetadata) {
        let file = directory.path + "/snapshot-\(UUID().uuidString).db"
        return (file, try SnapshotMaker.make(from: path, into: file, nodeID: id))
    }

    func books(_ path: String) throws -> String {
        try app(path, "SELECT group_concat(id || ':' || title) FROM (SELECT * FROM books ORDER BY id);")
    }

    func clock(_ path: String, id: Int) throws -> String {
        try app(
            path,
            "SELECT __harmonylite__hlc || '/' || __harmonylite__node || '/' || __harmonylite__deleted FROM __harmonylite__books_change_log WHERE id = \(id);")
    }

    /// Node 2 wrote and published a row after node 1's snapshot; the stream trimmed the message. After the
    /// restore node 2 still has it (every other node does), and it is not queued to publish again.
    /// (Before: only unpublished changes were written back, and the row was gone on node 2 alone.)
    @Test func ownPublishedWriteNewerThanTheSnapshotIsKept() throws {
        let source = try node("a.db", "INSERT INTO books VALUES (1, 'Dune', NULL);", id: 1)
        let target = try node("b.db", "", id: 2)
        try deliver(try publish(source, node: 1), to: target, node: 2)
        let snapshot = try snapshot(of: source, node: 1)
        Thread.sleep(forTimeInterval: 0.005)
        try app(target, "INSERT INTO books VALUES (5, 'mine, published', NULL); UPDATE books SET title = 'Dune, edited here' WHERE id = 1;")
        try deliver(try publish(target, node: 2), to: source, node: 1)
        let clocks = (try clock(target, id: 1), try clock(target, id: 5))
        let outcome = try restore(snapshot, into: target, node: 2)
        #expect(outcome.keptLiveVersions == 2 && outcome.keptLocalChanges == 0 && outcome.liveVersionNotes.isEmpty)
        #expect(outcome.comparedLiveVersions == 2)
        #expect(try books(target) == "1:Dune, edited here,5:mine, published\n")
        #expect(try books(target) == books(source))
        #expect((try clock(target, id: 1), try clock(target, id: 5)) == clocks)
        #expect(try publish(target, node: 2).isEmpty)
    }

    /// Node 2 deleted a row of the snapshot and published the delete: it stays deleted, with its
    /// tombstone, so the snapshot's version arriving again later does not bring it back.
    @Test func ownDeleteNewerThanTheSnapshotStaysDeleted() throws {
        let source = try node("a.db", "INSERT INTO books VALUES (1, 'Dune', NULL), (2, 'Emma', NULL);", id: 1)
        let target = try node("b.db", "", id: 2)
        let original = try publish(source, node: 1)
        try deliver(original, to: target, node: 2)
        let snapshot = try snapshot(of: source, node: 1)
        Thread.sleep(forTimeInterval: 0.005)
        try app(target, "DELETE FROM books WHERE id = 2;")
        try publish(target, node: 2)
        let tombstone = try clock(target, id: 2)
        #expect(tombstone.hasSuffix("/2/1\n"))
        let outcome = try restore(snapshot, into: target, node: 2)
        #expect(outcome.keptLiveVersions == 1)
        #expect(try books(target) == "1:Dune\n")
        #expect(try clock(target, id: 2) == tombstone)
        try deliver(original, to: target, node: 2)
        #expect(try books(target) == "1:Dune\n")
    }

    /// A write of node 3 that node 2 applied after the snapshot, trimmed from the stream since: kept.
    @Test func anotherNodesAppliedWriteNewerThanTheSnapshotIsKept() throws {
        let source = try node("a.db", "INSERT INTO books VALUES (1, 'Dune', NULL);", id: 1)
        let target = try node("b.db", "", id: 2)
        try deliver(try publish(source, node: 1), to: target, node: 2)
        let snapshot = try snapshot(of: source, node: 1)
        let later = Self.stamp(offsetMilliseconds: 1_000)
        try deliver([Self.upsert(1, "node 3's", stamp: later, writer: 3), Self.upsert(4, "node 3's too", stamp: later, writer: 3)], to: target, node: 2)
        let outcome = try restore(snapshot, into: target, node: 2)
        #expect(outcome.keptLiveVersions == 2)
        #expect(try books(target) == "1:node 3's,4:node 3's too\n")
        #expect(try clock(target, id: 4) == "\(Int64(bitPattern: later))/3/0\n")
    }

    /// A live version older than the snapshot's version of its row loses to it, as the event would.
    @Test func olderLiveVersionLosesToTheSnapshot() throws {
        let target = try node("b.db", "INSERT INTO books VALUES (1, 'older, node 2', NULL);", id: 2)
        let source = try node("a.db", "", id: 1)
        try deliver(try publish(target, node: 2), to: source, node: 1)
        Thread.sleep(forTimeInterval: 0.005)
        try app(source, "UPDATE books SET title = 'later, node 1' WHERE id = 1;")
        let snapshot = try snapshot(of: source, node: 1)
        let outcome = try restore(snapshot, into: target, node: 2)
        #expect(outcome.keptLiveVersions == 0 && outcome.comparedLiveVersions == 1)
        #expect(try books(target) == "1:later, node 1\n")
        #expect(try clock(target, id: 1).hasSuffix("/1/0\n"))
    }

    /// Equal stamps: the higher writer wins, and stamps compare as unsigned 64-bit numbers — the merge
    /// decides every row as the applier decides the same live version arriving as an event.
    @Test func tiesAreBrokenAsTheApplierBreaksThem() throws {
        let stamp = Self.stamp()
        let high: UInt64 = 1 << 63 | 5  // negative as SQLite's signed integer
        let snapshotVersions = [
            Self.upsert(1, "snapshot, writer 1", stamp: stamp, writer: 1), Self.upsert(2, "snapshot, writer 3", stamp: stamp, writer: 3),
            Self.upsert(3, "snapshot, small stamp", stamp: stamp, writer: 9), Self.upsert(4, "snapshot, high stamp", stamp: high, writer: 1),
        ]
        let liveVersions = [
            Self.upsert(1, "live, writer 2", stamp: stamp, writer: 2), Self.upsert(2, "live, writer 2", stamp: stamp, writer: 2),
            Self.upsert(3, "live, high stamp", stamp: high, writer: 2), Self.delete(4, stamp: stamp, writer: 2),
        ]
        let source = try node("a.db", "", id: 1)
        try deliver(snapshotVersions, to: source, node: 1)
        let snapshot = try snapshot(of: source, node: 1)
        let target = try node("b.db", "", id: 2)
        try deliver(liveVersions, to: target, node: 2)
        let outcome = try restore(snapshot, into: target, node: 2)
        // The applier's verdict: the live versions applied to the snapshot's rows.
        try deliver(liveVersions, to: source, node: 1)
        #expect(try books(target) == books(source))
        #expect(try books(target) == "1:live, writer 2,2:snapshot, writer 3,3:live, high stamp,4:snapshot, high stamp\n")
        #expect(outcome.keptLiveVersions == 2)
        for id in 1...4 { #expect(try clock(target, id: id) == clock(source, id: id)) }
    }

    /// Schemas that differ: a live column the snapshot lacks is dropped from the versions kept, a live
    /// table the snapshot lacks keeps nothing; both are said, counted. The snapshot's schema stands.
    @Test func liveTablesAndColumnsTheSnapshotLacksAreCountedNotKept() throws {
        let source = try node("a.db", "", id: 1)
        let snapshot = try snapshot(of: source, node: 1)
        let target = try node(
            "b.db", schema: Self.schema + "ALTER TABLE books ADD COLUMN isbn TEXT; CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);", id: 2)
        try app(target, "INSERT INTO books VALUES (1, 'Dune', NULL, '978-0441013593'); INSERT INTO notes VALUES (1, 'a'), (2, 'b');")
        try publish(target, node: 2)
        let outcome = try restore(snapshot, into: target, node: 2)
        #expect(outcome.keptLiveVersions == 1)
        #expect(
            outcome.liveVersionNotes.sorted() == [
                "books's column(s) isbn are not in the snapshot: their values in 1 kept live row version(s) are dropped",
                "notes is not in the snapshot: 2 live row version(s) of it are not kept",
            ])
        #expect(try books(target) == "1:Dune\n")
    }

    /// A live version the snapshot's schema refuses (a NOT NULL column without default that the live table
    /// lacks): that table keeps none of its versions, said with the reason; the restore goes on and the other
    /// tables keep theirs.
    @Test func aTableWhoseVersionsTheSnapshotRefusesDoesNotStopTheRestore() throws {
        let notes = "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);"
        let source = try node("a.db", schema: "CREATE TABLE books(id INTEGER PRIMARY KEY, title TEXT, isbn TEXT NOT NULL);" + notes, id: 1)
        let snapshot = try snapshot(of: source, node: 1)
        let target = try node("b.db", schema: "CREATE TABLE books(id INTEGER PRIMARY KEY, title TEXT);" + notes, id: 2)
        try app(target, "INSERT INTO books VALUES (1, 'Dune'), (2, 'Emma'); INSERT INTO notes VALUES (1, 'kept');")
        try publish(target, node: 2)
        let outcome = try restore(snapshot, into: target, node: 2)
        #expect(outcome.keptLiveVersions == 1)
        #expect(
            outcome.liveVersionNotes.count == 1 && outcome.liveVersionNotes[0].hasPrefix("2 live row version(s) of books are not kept: ")
                && outcome.liveVersionNotes[0].contains("NOT NULL"), "\(outcome.liveVersionNotes)")
        #expect(try app(target, "SELECT count(*) FROM books; SELECT body FROM notes;") == "0\nkept\n")
    }

    /// The snapshot has another page size than the live WAL database: the merge reads the live database
    /// attached to the prepared copy, whatever its page size.
    @Test func laterLiveVersionsAreKeptAcrossPageSizes() throws {
        let source = try node(
            "big-pages.db", schema: "PRAGMA journal_mode=DELETE; PRAGMA page_size=16384; VACUUM; PRAGMA journal_mode=WAL;" + Self.schema, id: 1)
        try app(source, "INSERT INTO books VALUES (1, 'Dune', NULL);")
        let snapshot = try snapshot(of: source, node: 1)
        Thread.sleep(forTimeInterval: 0.005)
        let target = try node("b.db", "INSERT INTO books VALUES (9, 'mine, published', NULL);", id: 2)
        try publish(target, node: 2)
        try app(target, "INSERT INTO books VALUES (10, 'mine, unpublished', NULL);")
        let outcome = try restore(snapshot, into: target, node: 2)
        // The unpublished row is a later live version too, and queued again.
        #expect(outcome.keptLiveVersions == 2 && outcome.keptLocalChanges == 1)
        #expect(try books(target) == "1:Dune,9:mine, published,10:mine, unpublished\n")
        #expect(try app(target, "PRAGMA journal_mode; PRAGMA page_size; PRAGMA integrity_check;") == "wal\n4096\nok\n")
        #expect(try publish(target, node: 2).map { $0.key.first! } == [.integer(10)])
    }
}
