import ChangeLog
import Foundation
import SQLiteKit

/// Brings a downloaded snapshot into the live database.
///
/// The file is verified first (size, SHA-256, SQLite's quick check): a snapshot that fails any of them is
/// refused and the database is not touched. Then the copy is prepared completely before the live database
/// sees it: change logs and triggers installed, the snapshot's cursor stored, and this node's changes
/// that were never published written back with their own stamps and queued again. Only then does the
/// backup API replace the live content in one step.
public enum SnapshotRestorer {
    public struct Outcome: Sendable {
        public var cursor: [String: UInt64]
        /// Local changes that had not been published, carried over.
        public var keptLocalChanges: Int
    }

    public static func restore(_ filePath: String, metadata: SnapshotMetadata, into databasePath: String, nodeID: UInt64) throws -> Outcome {
        try verify(filePath, metadata: metadata)
        let (live, liveInstallation) = try ChangeLogInstaller.open(databasePath, node: nodeID)
        let prepared = try SQLiteDatabase(untrustedPath: filePath)
        try prepared.execute("PRAGMA journal_mode=DELETE")
        let installation = try ChangeLogInstaller.install(in: prepared, node: nodeID)
        let applier = try ChangeApplier(database: prepared, catalog: installation.catalog)
        _ = try applier.apply([], cursor: metadata.cursor)
        // Read what is still unpublished as late as possible: the application may be writing.
        let reader = try ChangeReader(database: live, installation: liveInstallation)
        let pending = try reader.pending(after: try PublishWatermark.read(live), limit: Int.max).events
        try applier.replayLocal(pending, tableIDs: installation.tableIDs)
        try live.replaceContent(with: prepared)
        try live.execute("PRAGMA journal_mode=WAL")
        return Outcome(cursor: metadata.cursor, keptLocalChanges: pending.count)
    }

    /// Size, checksum and SQLite's own check of the file; throws saying which failed.
    public static func verify(_ filePath: String, metadata: SnapshotMetadata) throws {
        let (sha256, size) = try FileDigest.sha256(of: filePath)
        guard size == metadata.size else {
            throw SnapshotError("the snapshot is \(size) bytes, its metadata says \(metadata.size): refused, the database is unchanged")
        }
        guard sha256 == metadata.sha256 else {
            throw SnapshotError("the snapshot's SHA-256 is \(sha256), its metadata says \(metadata.sha256): refused, the database is unchanged")
        }
        let check = try SQLiteDatabase(untrustedPath: filePath).rows("PRAGMA quick_check").compactMap { $0.first ?? nil }
        guard check == ["ok"] else {
            throw SnapshotError("the snapshot fails SQLite's quick check (\(check.prefix(3).joined(separator: "; "))): refused, the database is unchanged")
        }
    }
}
