import Foundation
import TestSupport
import Testing

@testable import ChangeLog
@testable import Snapshots

/// Progress of long snapshot operations, in honest binary units.
@Suite struct ProgressTests {
    @Test func byteSizesUseBinaryUnitsWithSensiblePrecision() {
        #expect(ByteSize.text(0) == "0 B")
        #expect(ByteSize.text(512) == "512 B")
        #expect(ByteSize.text(12_800) == "12.5 KiB")
        #expect(ByteSize.text(8192) == "8 KiB")
        #expect(ByteSize.text(3_407_872) == "3.25 MiB")
        #expect(ByteSize.text(50_436_096) == "48.1 MiB")
        #expect(ByteSize.text(765_460_480) == "730 MiB")
        #expect(ByteSize.text(1_342_177_280) == "1.25 GiB")
        #expect(ByteSize.text(-5) == "0 B")
        #expect(ByteSize.rate(10 << 20, seconds: 4) == "2.5 MiB/s")
        #expect(ByteSize.rate(100, seconds: 0) == "97.7 KiB/s", "no division by zero")
    }

    @Test func transferLinesComeEveryIntervalAndAtTheEnd() {
        var now = 0.0
        var progress = TransferProgress("uploading the snapshot", interval: 2, clock: { now })
        now = 1
        #expect(progress.line(done: 1 << 20, total: 8 << 20) == nil)
        now = 2
        let quarter = JobNote(
            "uploading the snapshot",
            ["percent": "25", "total": "8 MiB", "rate": "1 MiB/s", "done_bytes": "\(2 << 20)", "total_bytes": "\(8 << 20)", "seconds": "2.00"])
        #expect(progress.line(done: 2 << 20, total: 8 << 20) == quarter, "a constant message, the values in fields")
        #expect("\(quarter)".hasPrefix(#"uploading the snapshot done_bytes=2097152 percent=25 rate="1 MiB/s" seconds=2.00"#), "\(quarter)")
        now = 2.5
        let whole = progress.line(done: 8 << 20, total: 8 << 20)
        #expect(
            whole?.message == "uploading the snapshot" && whole?.fields["percent"] == "100" && whole?.fields["rate"] == "3.2 MiB/s",
            "\(String(describing: whole))")
        var copy = TransferProgress("copying the database", interval: 2, clock: { now })
        now = 5
        let copied = copy.copyLine(written: 3 << 20, sourceSize: 12 << 20)
        #expect(
            copied
                == JobNote(
                    "copying the database",
                    [
                        "written": "3 MiB", "at_most": "12 MiB", "percent": "25", "written_bytes": "\(3 << 20)", "at_most_bytes": "\(12 << 20)",
                        "seconds": "2.50",
                    ]),
            "\(String(describing: copied))")
        #expect(copy.copyLine(written: 4 << 20, sourceSize: 12 << 20) == nil)
    }

    /// A real copy (`VACUUM INTO` of a 24 MiB database written by the sqlite3 shell) says how far it got
    /// while SQLite works, not only once it is done.
    @Test func theLocalCopySaysItsProgress() throws {
        let directory = try TemporaryDirectory()
        let source = directory.path + "/big.db"
        try makeDatabase(
            source,
            "PRAGMA journal_mode=WAL; CREATE TABLE blobs(id INTEGER PRIMARY KEY, body BLOB);"
                + "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000) INSERT INTO blobs SELECT i, randomblob(4000) FROM n;")
        var lines: [JobNote] = []
        let metadata = try SnapshotMaker.make(from: source, into: directory.path + "/copy.db", nodeID: 1, progressInterval: 0) { lines.append($0) }
        #expect(metadata.size > 20 << 20)
        #expect(lines.count >= 2, "\(lines)")
        #expect(
            lines.allSatisfy { $0.message == "copying the database" && $0.fields["at_most"]?.contains("MiB") == true && !"\($0)".contains("MB") }, "\(lines)")
        #expect(lines.contains { $0.fields["at_most"]?.hasPrefix("2") == true }, "the source's size is known: \(lines)")
    }

    /// Restoring it says how far the write into the live database got, ending at 100%, and the rows are there.
    @Test func theRestoreSaysItsProgressAndEndsAtTheWhole() throws {
        let directory = try TemporaryDirectory()
        let source = directory.path + "/a.db", target = directory.path + "/b.db"
        for path in [source, target] { try makeDatabase(path, "PRAGMA journal_mode=WAL; CREATE TABLE blobs(id INTEGER PRIMARY KEY, body BLOB);") }
        _ = try ChangeLogInstaller.open(source, node: 1)
        _ = try ChangeLogInstaller.open(target, node: 2)
        _ = try runCommand(
            "/usr/bin/sqlite3",
            [source, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) INSERT INTO blobs SELECT i, randomblob(4000) FROM n;"])
        let file = directory.path + "/snapshot.db"
        let metadata = try SnapshotMaker.make(from: source, into: file, nodeID: 1)
        var lines: [JobNote] = []
        _ = try SnapshotRestorer.restore(file, metadata: metadata, into: target, nodeID: 2) { lines.append($0) }
        #expect(
            lines.last?.message == "writing the snapshot into the live database" && lines.last?.fields["percent"] == "100"
                && lines.last?.fields["total"]?.contains(" MiB") == true, "\(lines)")
        #expect(try runCommand("/usr/bin/sqlite3", [target, "SELECT count(*) FROM blobs;"]).output == "3000\n")
    }
}
