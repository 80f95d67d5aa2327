import ChangeLog
import Foundation
import SQLiteKit
import TestSupport
import Testing

@testable import Snapshots

#if canImport(Glibc)
import Glibc
#endif

/// A restore that fails for lack of disk space says so, naming the database and the cause (SQLite error 13,
/// ENOSPC, a download that does not fit), so the snapshotter can refuse the start instead of failing into a
/// restart loop.
@Suite struct RestoreNoSpaceTests {
    @Test func diskFullErrorsAreRecognisedAndNothingElse() {
        #expect(RestoreNoSpace.isDiskFull(SQLiteError(code: 13, message: "database or disk is full")))
        #expect(RestoreNoSpace.isDiskFull(SQLiteError(code: 13 | (1 << 8), message: "an extended code of SQLITE_FULL")))
        #expect(RestoreNoSpace.isDiskFull(SnapshotError(.noSpace, "not downloaded")))
        #expect(RestoreNoSpace.isDiskFull(SnapshotError(.storage, "writing /db.snapshot-download: No space left on device")))
        #expect(RestoreNoSpace.isDiskFull(NSError(domain: NSPOSIXErrorDomain, code: Int(ENOSPC))))
        #expect(!RestoreNoSpace.isDiskFull(SnapshotError(.transfer, "webdav GET: HTTP 507 No space left on device")), "a store's answer is not local")
        #expect(!RestoreNoSpace.isDiskFull(SQLiteError(code: 10, message: "disk I/O error")))
        #expect(!RestoreNoSpace.isDiskFull(SQLiteError(code: 5, message: "database is locked")))
        #expect(!RestoreNoSpace.isDiskFull(SnapshotError(.storage, "cannot read /x: Permission denied")))
        #expect(!RestoreNoSpace.isDiskFull(SnapshotError(.refused, "SHA-256 differs")))
    }

    @Test func aFailureIsNamedWithTheDatabaseAndTheFreeSpaceOthersPassThrough() throws {
        #expect {
            try RestoreNoSpace.naming("/tmp/node.db") { throw SQLiteError(code: 13, message: "database or disk is full") }
        } throws: { error in
            guard let noSpace = error as? RestoreNoSpace else { return false }
            let text = "\(noSpace)"
            return noSpace.database == "/tmp/node.db" && noSpace.freeBytes != nil && text.contains("/tmp/node.db")
                && text.contains("SQLite error 13: database or disk is full") && text.contains("Free space there")
        }
        #expect(throws: SQLiteError.self) { try RestoreNoSpace.naming("/tmp/node.db") { throw SQLiteError(code: 10, message: "disk I/O error") } }
        #expect(try RestoreNoSpace.naming("/tmp/node.db") { 7 } == 7)
    }

    @Test func aDownloadThatDoesNotFitIsNoSpace() throws {
        let directory = try TemporaryDirectory()
        let metadata = SnapshotMetadata(cursor: [:], schemaHash: "", sha256: "", size: Int64.max / 2, nodeID: 1, createdAt: 0)
        #expect {
            try DownloadBound.check(metadata, into: directory.path + "/node.db.snapshot-download")
        } throws: { ($0 as? SnapshotError)?.kind == .noSpace }
    }

    /// A real full disk: the restore's writes into a database on a 1 MiB tmpfs fail with SQLite error 13, which
    /// comes out named, and the live database is unchanged.
    @Test(.enabled(if: geteuid() == 0, "needs root to mount a small tmpfs")) func aRestoreOntoAFullDiskIsNamedAndLeavesTheDatabase() throws {
        let directory = try TemporaryDirectory()
        let mountPoint = try Self.mountSmallDisk(in: directory)
        defer { _ = try? runCommand("/usr/bin/umount", ["-l", mountPoint]) }
        let source = directory.path + "/source.db"
        try sqlite(source, "PRAGMA journal_mode=WAL; CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT);")
        _ = try ChangeLogInstaller.open(source, node: 1)
        try sqlite(
            source, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) INSERT INTO books SELECT i, hex(randomblob(500)) FROM n;")
        let file = directory.path + "/snapshot.db"
        let metadata = try SnapshotMaker.make(from: source, into: file, nodeID: 1)
        let target = mountPoint + "/node.db"
        try sqlite(target, "PRAGMA journal_mode=WAL; CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT);")
        _ = try ChangeLogInstaller.open(target, node: 2)
        try sqlite(target, "INSERT INTO books VALUES (9, 'mine');")
        #expect {
            try RestoreNoSpace.naming(target) { try SnapshotRestorer.restore(file, metadata: metadata, into: target, nodeID: 2) }
        } throws: { error in
            guard let noSpace = error as? RestoreNoSpace else { Issue.record("\(error)"); return false }
            return noSpace.database == target && noSpace.cause.contains("SQLite error 13") && "\(noSpace)".contains("filesystem holding \(target)")
        }
        #expect(try runCommand("/usr/bin/sqlite3", [target, "SELECT id, title FROM books;"]).output == "9|mine\n")
    }

    /// A failure whose error does not say why (curl's `Failure writing output to destination`) on a filesystem
    /// left without space is one too; a refused snapshot stays a refusal.
    @Test(.enabled(if: geteuid() == 0, "needs root to mount a small tmpfs")) func anyFailureOnAFullFilesystemIsNoSpaceButARefusal() throws {
        let directory = try TemporaryDirectory()
        let mountPoint = try Self.mountSmallDisk(in: directory)
        defer { _ = try? runCommand("/usr/bin/umount", ["-l", mountPoint]) }
        let filler = open(mountPoint + "/filler", O_WRONLY | O_CREAT, 0o600)
        let block = [UInt8](repeating: 0x55, count: 4096)
        while block.withUnsafeBytes({ write(filler, $0.baseAddress, $0.count) }) > 0 {}
        close(filler)
        let target = mountPoint + "/node.db"
        #expect(throws: RestoreNoSpace.self) {
            try RestoreNoSpace.naming(target) { throw SnapshotError(.transfer, "webdav GET: Failure writing output to destination") }
        }
        #expect(throws: SnapshotError.self) { try RestoreNoSpace.naming(target) { throw SnapshotError(.refused, "SHA-256 differs") } }
    }

    /// A 1 MiB tmpfs mounted at `small` in `directory` (the caller unmounts it).
    static func mountSmallDisk(in directory: TemporaryDirectory) throws -> String {
        let mountPoint = directory.path + "/small"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: false)
        let mounted = try runCommand("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=1m,mode=0700", "hl-restore-full", mountPoint])
        guard mounted.status == 0 else { throw TestFailure("mount tmpfs on \(mountPoint): \(mounted.output)") }
        return mountPoint
    }

    private func sqlite(_ path: String, _ sql: String) throws {
        let result = try runCommand("/usr/bin/sqlite3", [path, sql])
        guard result.status == 0 else { throw TestFailure("sqlite3 \(path): \(result.output)") }
    }
}
