import CurlTransfer
import Foundation
import NATSClient
import TestSupport
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

    /// The snapshot keeps what last-writer-wins needs on the node that restores it (every row's clock, the
    /// tombstones), the cursor and the streams it belongs to (in the metadata), and none of the saving
    /// node's own bookkeeping (its queue, watermark, incarnation, triggers).
    @Test func snapshotHasTheDataCursorAndRowClocksButNotTheNodesBookkeeping() throws {
        let source = try node(
            "a.db", "INSERT INTO books VALUES (1, 'Dune', x'00ff00'), (2, 'Emma', NULL), (3, 'gone', NULL); DELETE FROM books WHERE id = 3;", id: 1)
        let (db, installation) = try ChangeLogInstaller.open(source, node: 1)
        _ = try ChangeApplier(database: db, catalog: installation.catalog).apply(
            [], cursor: ["harmonylite-changes-1": 41], streams: ["harmonylite-changes-1": 777])
        let clocks = try app(
            source, "SELECT id, __harmonylite__hlc, __harmonylite__node, __harmonylite__deleted FROM __harmonylite__books_change_log ORDER BY id;")
        let file = directory.path + "/snapshot.db"
        let metadata = try SnapshotMaker.make(from: source, into: file, nodeID: 1)
        #expect(metadata.cursor == ["harmonylite-changes-1": 41])
        #expect(metadata.streams == ["harmonylite-changes-1": 777])
        #expect(metadata.format == 2)
        #expect(metadata.schemaHash == installation.schemaHash)
        #expect(metadata.size == Int64(try FileManager.default.attributesOfItem(atPath: file)[.size] as! Int))
        #expect(
            try app(file, "SELECT id, __harmonylite__hlc, __harmonylite__node, __harmonylite__deleted FROM __harmonylite__books_change_log ORDER BY id;")
                == clocks)
        #expect(clocks.hasSuffix("|1|1\n"), "the delete left no tombstone: \(clocks)")
        #expect(
            try app(file, "SELECT name FROM sqlite_master WHERE name LIKE '%harmonylite%' ORDER BY name;")
                == "__harmonylite___columns\n__harmonylite___conflicts\n__harmonylite___conflicts_by_holder\n__harmonylite___held_values\n"
                + "__harmonylite___held_values_by_row\n__harmonylite___parked\n__harmonylite___renamed_tables\n__harmonylite__books_change_log\n")
        #expect(try app(file, "SELECT id, title, hex(cover) FROM books ORDER BY id;") == "1|Dune|00FF00\n2|Emma|\n")
        #expect(try SnapshotMetadata(decoding: metadata.encoded()) == metadata)
        try SnapshotRestorer.verify(file, metadata: metadata)
    }

    /// A snapshot of an earlier version (format 1: no row clocks, no stream identities) is still restored.
    @Test func formatOneMetadataIsStillRead() throws {
        let text = #"{"createdAt":1,"cursor":{"s":3},"format":1,"nodeID":1,"schemaHash":"ab","sha256":"\#(String(repeating: "0f", count: 32))","size":9}"#
        let metadata = try SnapshotMetadata(decoding: Array(text.utf8))
        #expect(metadata.format == 1 && metadata.cursor == ["s": 3] && metadata.streams == nil)
        #expect(throws: SnapshotError.self) { try SnapshotMetadata(decoding: Array(text.replacingOccurrences(of: "\"format\":1", with: "\"format\":3").utf8)) }
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
        let target = try node(
            "b.db", "INSERT INTO books VALUES (9, 'never published', NULL); DELETE FROM books WHERE id = 9; INSERT INTO books VALUES (7, 'unpublished', NULL);",
            id: 2)
        let targetDB = try SQLiteDatabase(existingPath: target)
        _ = try targetDB.transaction { () throws(SQLiteError) -> Int in try StampMaterializer(database: targetDB).materialize() }
        let stampBefore = try app(target, "SELECT __harmonylite__hlc FROM __harmonylite__books_change_log WHERE id = 7;")
        #expect(!stampBefore.isEmpty)
        let reader = try SQLiteDatabase(existingPath: target)
        _ = try reader.scalarInteger("SELECT count(*) FROM books")
        let outcome = try SnapshotRestorer.restore(file, metadata: metadata, into: target, nodeID: 2)
        #expect(outcome.keptLocalChanges == 2 && outcome.supersededLocalChanges == 0)
        #expect(try app(target, "SELECT group_concat(id || ':' || title) FROM books;") == "1:Dune,2:Emma,7:unpublished\n")
        #expect(try app(target, "SELECT __harmonylite__hlc FROM __harmonylite__books_change_log WHERE id = 7;") == stampBefore)
        #expect(try reader.scalarInteger("SELECT count(*) FROM books") == 3)
        let (db, installation) = try ChangeLogInstaller.open(target, node: 2)
        let pending = try ChangeReader(database: db, installation: installation).pending(after: 0, limit: 100).events
        #expect(Set(pending.map { "\($0.operation)\($0.key.first!)" }) == ["upsert\(SQLiteValue.integer(7))", "delete\(SQLiteValue.integer(9))"])
        #expect(try app(target, "PRAGMA journal_mode;") == "wal\n")
    }
}

/// When a node must restore before applying anything: HarmonyLite's conditions, without its off-by-one, and
/// a stream that is not the one the cursor belongs to.
@Test func restoreDecisionFollowsTheSeqMapAndTheStreams() {
    struct Unreadable: Error {}
    let cursor: [String: UInt64] = ["harmonylite-changes-1": 10]
    let stored = RestoreDecision.Position(cursor: cursor, streams: ["harmonylite-changes-1": 100])
    typealias Now = RestoreDecision.StreamNow
    #expect(RestoreDecision.reason(seqMap: .success(nil), stored: stored, streams: [:]) == "there is no seq map")
    #expect(RestoreDecision.reason(seqMap: .failure(Unreadable()), stored: stored, streams: [:])?.hasPrefix("the seq map cannot be read") == true)
    // The stream still holds message 11, the next one: no gap (HarmonyLite restored here too).
    #expect(RestoreDecision.reason(seqMap: .success(cursor), stored: stored, streams: ["harmonylite-changes-1": Now(firstSequence: 11, created: 100)]) == nil)
    #expect(
        RestoreDecision.reason(seqMap: .success(cursor), stored: stored, streams: ["harmonylite-changes-1": Now(firstSequence: 12, created: 100)])
            == "harmonylite-changes-1 starts at message 12, past this node's position 10")
    // A shard this node never consumed, whose stream lost its first messages.
    #expect(RestoreDecision.reason(seqMap: .success(cursor), stored: stored, streams: ["harmonylite-changes-2": Now(firstSequence: 5)]) != nil)
    #expect(RestoreDecision.reason(seqMap: .success(cursor), stored: stored, streams: ["harmonylite-changes-2": Now(firstSequence: 1)]) == nil)
    // Deleted and created again: it starts at 1 again, which the sequences alone took for "no gap".
    #expect(
        RestoreDecision.reason(seqMap: .success(cursor), stored: stored, streams: ["harmonylite-changes-1": Now(firstSequence: 1, created: 200)])?
            .hasPrefix("harmonylite-changes-1 is not the stream this node's cursor (message 10) belongs to") == true)
    #expect(RestoreDecision.reason(seqMap: .success(cursor), stored: stored, streams: ["harmonylite-changes-1": Now(firstSequence: nil, created: 200)]) != nil)
    // Nothing recorded yet (a database of an earlier version): the cursor holds.
    #expect(
        RestoreDecision.reason(seqMap: .success(cursor), stored: .init(cursor: cursor), streams: ["harmonylite-changes-1": Now(firstSequence: 1, created: 200)])
            == nil)
}

/// Metadata, object descriptions and listings come from a store anyone with its credentials can write:
/// numbers out of range, sizes that do not add up and names that are not ours are refused with the field.
@Suite struct HostileSnapshotInputTests {
    static let valid = SnapshotMetadata(
        cursor: ["hl-1": 10, "hl-2": 0], schemaHash: String(repeating: "ab", count: 32),
        sha256: String(repeating: "0f", count: 32), size: 4096, nodeID: 2, createdAt: 1_763_900_000_000)

    static func replacing(_ field: String, with value: String) -> [UInt8] {
        var object = try! JSONSerialization.jsonObject(with: Data(valid.encoded())) as! [String: Any]
        object[field] = try! JSONSerialization.jsonObject(with: Data(value.utf8), options: .fragmentsAllowed)
        return Array(try! JSONSerialization.data(withJSONObject: object))
    }

    @Test func validMetadataRoundTrips() throws {
        #expect(try SnapshotMetadata(decoding: Self.valid.encoded()) == Self.valid)
    }

    @Test(arguments: [
        ("cursor", #"{"hl-1": 18446744073709551615}"#, "above"),
        ("cursor", #"{"hl-1": -1}"#, "cannot be read"),
        ("cursor", #"{"a b": 1}"#, "stream name"),
        ("cursor", #"{"OBJ.x": 1}"#, "stream name"),
        ("size", "-1", "size is -1"),
        ("size", "18446744073709551616", "cannot be read"),
        ("sha256", #""../../etc""#, "sha256"),
        ("schemaHash", #""x y""#, "schemaHash"),
        ("createdAt", "-5", "createdAt"),
        ("format", "3", "format 3"),
    ])
    func outOfRangeMetadataIsRefusedByName(field: String, value: String, expected: String) {
        let error = #expect(throws: SnapshotError.self) { try SnapshotMetadata(decoding: Self.replacing(field, with: value)) }
        #expect(error?.kind == .refused)
        #expect(error?.description.contains(expected) == true, "\(error?.description ?? "")")
    }

    @Test func oversizedMetadataIsRefusedBeforeParsing() {
        let bytes = [UInt8](repeating: 0x20, count: SnapshotMetadata.maximumEncodedSize + 1)
        let error = #expect(throws: SnapshotError.self) { try SnapshotMetadata(decoding: bytes) }
        #expect(error?.kind == .refused)
        #expect(error?.description.contains("above the") == true)
    }

    static func objectInfo(size: Int64, chunks: Int, nuid: String = "Abc123") -> [UInt8] {
        Array(#"{"name":"snapshot.db","bucket":"b","nuid":"\#(nuid)","size":\#(size),"mtime":"x","chunks":\#(chunks),"digest":"SHA-256=x"}"#.utf8)
    }

    @Test func objectDescriptionsThatCannotAddUpAreRefused() throws {
        #expect(throws: Never.self) { try ObjectInfo.decode(Self.objectInfo(size: 300_000, chunks: 3)).get() }
        #expect(throws: Never.self) { try ObjectInfo.decode(Self.objectInfo(size: 0, chunks: 0)).get() }
        for (size, chunks) in [(Int64(100), -1), (-1, 0), (5, 6), (5, 0), (0, 1)] {
            #expect(throws: ObjectInfoError.self, "size \(size), chunks \(chunks)") { try ObjectInfo.decode(Self.objectInfo(size: size, chunks: chunks)).get() }
        }
        // The nuid names the chunk subject this node reads and purges: `>` would purge every chunk.
        for nuid in [">", "*", "a.b", "", "a b"] {
            #expect(throws: ObjectInfoError.self, "nuid \(nuid)") { try ObjectInfo.decode(Self.objectInfo(size: 1, chunks: 1, nuid: nuid)).get() }
        }
    }

    @Test func listingsKeepOnlyOurOwnFileNames() {
        let ours = "snapshot-1763900000000-0123456789abcdef"
        let propfind = """
            <?xml version="1.0"?><D:multistatus xmlns:D="DAV:"><D:response><D:href>/dav/snaps/</D:href></D:response>
            <D:response><D:href>/dav/snaps/\(ours).json</D:href></D:response><D:response><href>/dav/snaps/\(ours).db</href></D:response>
            <D:response><D:href>/dav/snaps/snapshot-1-0123456789abcdef.json%20rm%20x</D:href></D:response>
            <D:response><D:href>/dav/snaps/..%2F..%2Fetc%2Fpasswd</D:href></D:response>
            <D:response><D:href>/dav/snaps/snapshot-99-0123456789ABCDEF.json</D:href></D:response></D:multistatus>
            """
        #expect(SnapshotListing.webDAV(Array(propfind.utf8)) == [ours + ".json", ours + ".db"])
        let sftp = "\(ours).db\n\(ours).json\r\nsnapshot-1-0123456789abcdef.json x\n.\n..\nsnapshot-1-0123456789abcdef.db;rm\n"
        #expect(SnapshotListing.sftp(Array(sftp.utf8)) == [ours + ".db", ours + ".json"])
    }

    @Test func downloadLargerThanTheDiskIsRefusedBeforeAnyByte() throws {
        var metadata = Self.valid
        metadata.size = Int64.max
        let directory = try TemporaryDirectory()
        let error = #expect(throws: SnapshotError.self) { try DownloadBound.check(metadata, into: directory.path + "/x.snapshot-download") }
        #expect(error?.kind == .noSpace)
        #expect(error?.description.contains("not downloaded") == true)
        metadata.size = 4096
        #expect(throws: Never.self) { try DownloadBound.check(metadata, into: directory.path + "/x.snapshot-download") }
    }

    /// libcurl stops a transfer past its maximum, whatever the server announced (a file:// URL announces
    /// nothing the way a lying server would not).
    @Test func transferBeyondItsMaximumIsStopped() throws {
        let directory = try TemporaryDirectory()
        let source = directory.write("big", String(repeating: "x", count: 300_000))
        var request = CurlRequest(url: "file://" + source)
        request.downloadFile = directory.path + "/copy"
        request.maximumBytes = 1000
        let error = #expect(throws: CurlError.self) { try request.perform() }
        #expect(error?.description.contains("larger than the 1000 bytes") == true, "\(error?.description ?? "")")
        request.maximumBytes = 300_000
        #expect(throws: Never.self) { try request.perform() }
    }

    @Test func restoreDecisionWithTheLargestCursorDoesNotTrap() {
        let reason = RestoreDecision.reason(
            seqMap: .success(["hl-1": .max]), stored: .init(cursor: ["hl-1": .max, "hl-2": .max - 1]),
            streams: ["hl-1": .init(firstSequence: .max), "hl-2": .init(firstSequence: 5), "hl-3": .init(firstSequence: .max)])
        #expect(reason?.contains("hl-3 starts at message 18446744073709551615") == true)
    }
}

@Suite struct FuzzSnapshotDecoders {
    @Test func fuzzSnapshotMetadata() {
        let seeds = [HostileSnapshotInputTests.valid.encoded(), HostileSnapshotInputTests.replacing("cursor", with: #"{"a":1,"b":2,"c":9223372036854775807}"#)]
        let report = Fuzzer.run("snapshot metadata (JSON)", seeds: seeds) { (try? SnapshotMetadata(decoding: $0)) != nil }
        #expect(report.accepted > 0 && report.refused > 0)
    }

    @Test func fuzzObjectInfo() {
        let headers =
            #"{"name":"snapshot.db","bucket":"b","nuid":"Abc123","size":262144,"mtime":"2026-11-23T10:00:00Z","chunks":2,"digest":"SHA-256=x","headers":{"Harmonylite-Snapshot":["{}"]},"options":{"max_chunk_size":131072}}"#
        let seeds = [HostileSnapshotInputTests.objectInfo(size: 300_000, chunks: 3), Array(headers.utf8)]
        let report = Fuzzer.run("object-store info (JSON)", seeds: seeds) { (try? ObjectInfo.decode($0).get()) != nil }
        #expect(report.accepted > 0 && report.refused > 0)
    }

    @Test func fuzzWebDAVListing() {
        let ours = "snapshot-1763900000000-0123456789abcdef"
        let seed = Array(
            #"<?xml version="1.0"?><D:multistatus xmlns:D="DAV:"><D:response><D:href>/d/</D:href></D:response><D:response><D:href>/d/\#(ours).json</D:href></D:response><D:response><D:href>/d/\#(ours).db</D:href></D:response></D:multistatus>"#
                .utf8)
        let report = Fuzzer.run("webdav listing (PROPFIND XML)", seeds: [seed]) { body in
            let names = SnapshotListing.webDAV(body)
            #expect(names.allSatisfy { SnapshotListing.isSnapshotFile($0[...]) && !$0.contains("/") })
            return !names.isEmpty
        }
        #expect(report.accepted > 0 && report.refused > 0)
    }

    @Test func fuzzSFTPListing() {
        let seed = Array("snapshot-1763900000000-0123456789abcdef.db\nsnapshot-1763900000000-0123456789abcdef.json\n".utf8)
        let report = Fuzzer.run("sftp listing", seeds: [seed]) { body in
            let names = SnapshotListing.sftp(body)
            #expect(names.allSatisfy { SnapshotListing.isSnapshotFile($0[...]) && !$0.contains(" ") })
            return !names.isEmpty
        }
        #expect(report.accepted > 0 && report.refused > 0)
    }
}

/// A downloaded snapshot is a file from outside: it is opened defensively before its schema is read.
@Suite struct DefensiveOpenTests {
    @Test func untrustedFilesAreOpenedDefensively() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/s.db"
        try makeDatabase(path, "CREATE TABLE t (id INTEGER PRIMARY KEY, v); CREATE VIEW v AS SELECT * FROM t;")
        let database = try SQLiteDatabase(untrustedPath: path)
        #expect(try database.scalarInteger("PRAGMA trusted_schema") == 0)
        #expect(try database.scalarInteger("PRAGMA cell_size_check") == 1)
        // SQLITE_DBCONFIG_DEFENSIVE: the schema cannot be rewritten through SQL on this connection.
        try database.execute("PRAGMA writable_schema = ON")
        #expect(throws: SQLiteError.self) { try database.execute("UPDATE sqlite_master SET sql = 'CREATE TABLE t (x)' WHERE name = 't'") }
        // The same file opened as trusted allows it: the test can fail.
        let trusted = try SQLiteDatabase(existingPath: path)
        try trusted.execute("PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = sql WHERE name = 't'; PRAGMA writable_schema = OFF")
    }
}
