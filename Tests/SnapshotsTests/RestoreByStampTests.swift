import Foundation
import TestSupport
import Testing

@testable import ChangeEvents
@testable import ChangeLog
@testable import SQLiteKit
@testable import Snapshots

/// A restored node goes on deciding every row by its stamp: the snapshot's row clocks come with it.
extension SnapshotTests {
    /// A stamp `offset` milliseconds from now, as the capture triggers make them.
    static func stamp(offsetMilliseconds offset: Int64 = 0) -> UInt64 {
        UInt64(Int64(Date().timeIntervalSince1970 * 1000) + offset) << 16
    }

    static func upsert(_ id: Int64, _ title: String, stamp: UInt64, writer: UInt64) -> ChangeEvent {
        ChangeEvent(
            changeID: 1, table: "books", operation: .upsert, stamp: stamp, writer: writer,
            columns: ["id", "title", "cover"], values: [.integer(id), .text(title), .null], keyCount: 1)
    }

    static func delete(_ id: Int64, stamp: UInt64, writer: UInt64) -> ChangeEvent {
        ChangeEvent(changeID: 1, table: "books", operation: .delete, stamp: stamp, writer: writer, columns: ["id"], values: [.integer(id)], keyCount: 1)
    }

    /// Node 1's snapshot, restored into node 2.
    func restoredNode(source sql: String, target targetSQL: String = "") throws -> (path: String, outcome: SnapshotRestorer.Outcome) {
        let source = try node("a.db", sql, id: 1)
        let file = directory.path + "/snapshot.db"
        let metadata = try SnapshotMaker.make(from: source, into: file, nodeID: 1)
        let target = try node("b.db", targetSQL, id: 2)
        return (target, try SnapshotRestorer.restore(file, metadata: metadata, into: target, nodeID: 2))
    }

    /// An event older than the snapshot's version of a row, arriving after the restore (a partitioned node
    /// publishing late, a resend after the duplicate window), neither rolls the row back nor brings a
    /// deleted row back. (Before: the snapshot had no row clocks, and both applied.)
    @Test func restoredNodeRefusesOlderEvents() throws {
        let old = Self.stamp(offsetMilliseconds: -60_000)
        let (target, _) = try restoredNode(source: "INSERT INTO books VALUES (1, 'Dune', NULL), (2, 'Emma', NULL); DELETE FROM books WHERE id = 2;")
        let (db, installation) = try ChangeLogInstaller.open(target, node: 2)
        let outcome = try ChangeApplier(database: db, catalog: installation.catalog)
            .apply([Self.upsert(1, "rolled back", stamp: old, writer: 3), Self.upsert(2, "back from the dead", stamp: old, writer: 3)])
        #expect(outcome.applied == 0 && outcome.superseded == 2)
        #expect(try app(target, "SELECT group_concat(id || ':' || title) FROM books;") == "1:Dune\n")
    }

    /// A change this node made before node 1's later write of the same row, never published, loses to the
    /// snapshot's version and is not queued again. (Before: written back over the newer row.)
    @Test func unpublishedLocalChangeOlderThanTheSnapshotsRowLoses() throws {
        let target = try node("b.db", "INSERT INTO books VALUES (1, 'older, local', NULL), (5, 'mine', NULL);", id: 2)
        Thread.sleep(forTimeInterval: 0.01)
        let source = try node("a.db", "INSERT INTO books VALUES (1, 'Dune', NULL);", id: 1)
        let file = directory.path + "/snapshot.db"
        let outcome = try SnapshotRestorer.restore(file, metadata: try SnapshotMaker.make(from: source, into: file, nodeID: 1), into: target, nodeID: 2)
        #expect(outcome.keptLocalChanges == 1 && outcome.supersededLocalChanges == 1)
        #expect(try app(target, "SELECT group_concat(id || ':' || title) FROM (SELECT * FROM books ORDER BY id);") == "1:Dune,5:mine\n")
        let (db, installation) = try ChangeLogInstaller.open(target, node: 2)
        let pending = try ChangeReader(database: db, installation: installation).pending(after: 0, limit: 100).events
        #expect(pending.map { $0.key.first! } == [.integer(5)])
    }

    /// A row whose stamp is ahead of this node's clock (written on a node whose clock runs fast): a local
    /// write after the restore is stamped above it, so it wins everywhere as the later write. (Before:
    /// stamped with the wall clock alone, below the row's stamp: every other node kept the old version.)
    @Test func localWriteAfterARestoreIsStampedAboveTheRowsStamp() throws {
        let ahead = Self.stamp(offsetMilliseconds: 3_600_000)
        let source = try node("a.db", "INSERT INTO books VALUES (1, 'Dune', NULL);", id: 1)
        _ = try ChangeLogInstaller.open(source, node: 1)  // stamps the insert into its row clock
        try app(source, "UPDATE __harmonylite__books_change_log SET __harmonylite__hlc = \(Int64(bitPattern: ahead));")
        #expect(try app(source, "SELECT __harmonylite__hlc FROM __harmonylite__books_change_log;") == "\(Int64(bitPattern: ahead))\n")
        let file = directory.path + "/snapshot.db"
        let metadata = try SnapshotMaker.make(from: source, into: file, nodeID: 1)
        let target = try node("b.db", "", id: 2)
        _ = try SnapshotRestorer.restore(file, metadata: metadata, into: target, nodeID: 2)
        try app(target, "UPDATE books SET title = 'edited here' WHERE id = 1;")
        // The stamp it is published with, and the one its row clock gets.
        let (db, installation) = try ChangeLogInstaller.open(target, node: 2)
        let published = try ChangeReader(database: db, installation: installation).pending(after: 0, limit: 100).events
        #expect(published.count == 1 && published[0].stamp > ahead, "published \(published.map(\.stamp)), the row's stamp was \(ahead)")
        _ = try db.transaction { () throws(SQLiteError) -> Int in try StampMaterializer(database: db).materialize() }
        let stamp = try app(target, "SELECT __harmonylite__hlc FROM __harmonylite__books_change_log WHERE id = 1;")
        #expect(UInt64(stamp.dropLast()).map { $0 > ahead } == true, "stamp \(stamp) is not above \(ahead)")
    }

    /// The node's own events coming back from the stream: applied where the snapshot lacks them, skipped
    /// where the row already holds them, by stamp rather than by origin.
    @Test func ownEventsAreDecidedByStamp() throws {
        let (target, _) = try restoredNode(source: "INSERT INTO books VALUES (1, 'Dune', NULL);")
        let (db, installation) = try ChangeLogInstaller.open(target, node: 2)
        let applier = try ChangeApplier(database: db, catalog: installation.catalog)
        let published = [Self.upsert(7, "published after the snapshot", stamp: Self.stamp(), writer: 2), Self.delete(1, stamp: Self.stamp(), writer: 2)]
        #expect(try applier.notYetHeld(published) == published)
        _ = try applier.apply(published)
        #expect(try applier.notYetHeld(published).isEmpty)
        #expect(try app(target, "SELECT group_concat(id || ':' || title) FROM books;") == "7:published after the snapshot\n")
        // A write made here: its own event is held, whether its stamp is still pending or in the row clock.
        try app(target, "INSERT INTO books VALUES (8, 'local', NULL); UPDATE books SET title = 'local, again' WHERE id = 8;")
        let pending = try ChangeReader(database: db, installation: installation).pending(after: 0, limit: 100).events
        #expect(pending.count == 1)
        #expect(try applier.notYetHeld(pending).isEmpty)
        _ = try db.transaction { () throws(SQLiteError) -> Int in try StampMaterializer(database: db).materialize() }
        #expect(try applier.notYetHeld(pending).isEmpty)
    }

    /// The backup API cannot change a WAL database's page size: the snapshot is brought to the live one's.
    /// (Before: the restore failed with "attempt to write a readonly database".)
    @Test func restoreIntoAWALDatabaseWithAnotherPageSize() throws {
        let source = directory.path + "/big-pages.db"
        try makeDatabase(source, "PRAGMA page_size=16384; VACUUM; PRAGMA journal_mode=WAL;" + Self.schema)
        _ = try ChangeLogInstaller.open(source, node: 1)
        try app(source, "INSERT INTO books VALUES (1, 'Dune', NULL);")
        #expect(try app(source, "PRAGMA page_size;") == "16384\n")
        let file = directory.path + "/snapshot.db"
        let metadata = try SnapshotMaker.make(from: source, into: file, nodeID: 1)
        let target = try node("b.db", "INSERT INTO books VALUES (9, 'mine', NULL);", id: 2)
        #expect(try app(target, "PRAGMA page_size;") == "4096\n")
        _ = try SnapshotRestorer.restore(file, metadata: metadata, into: target, nodeID: 2)
        #expect(try app(target, "SELECT group_concat(id || ':' || title) FROM (SELECT * FROM books ORDER BY id);") == "1:Dune,9:mine\n")
        #expect(try app(target, "PRAGMA journal_mode; PRAGMA integrity_check;") == "wal\nok\n")
    }

    /// A stream created anew since the snapshot (another identity) is consumed from its start; one that is
    /// the same keeps the snapshot's cursor. Both identities are stored with the cursor.
    @Test func restoreConsumesAReplacedStreamFromItsStart() throws {
        let source = try node("a.db", "INSERT INTO books VALUES (1, 'Dune', NULL);", id: 1)
        let (db, installation) = try ChangeLogInstaller.open(source, node: 1)
        _ = try ChangeApplier(database: db, catalog: installation.catalog).apply([], cursor: ["s1": 40, "s2": 9], streams: ["s1": 100, "s2": 300])
        let file = directory.path + "/snapshot.db"
        let metadata = try SnapshotMaker.make(from: source, into: file, nodeID: 1)
        let target = try node("b.db", "", id: 2)
        let outcome = try SnapshotRestorer.restore(file, metadata: metadata, into: target, nodeID: 2, currentStreams: ["s1": 200, "s2": 300])
        #expect(outcome.cursor == ["s1": 0, "s2": 9])
        #expect(outcome.replacedStreams == ["s1": .replaced(recorded: 100, current: 200)])
        let restored = try SQLiteDatabase(existingPath: target)
        #expect(try ChangeApplier.storedCursor(in: restored) == ["s1": 0, "s2": 9])
        #expect(try StreamIdentities.read(in: restored) == ["s1": 200, "s2": 300])
    }
}
