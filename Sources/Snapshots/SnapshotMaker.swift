import ChangeEvents
import ChangeLog
import Foundation
import SQLiteKit
import SystemCalls

/// Makes a snapshot file from the live database: `VACUUM INTO` a consistent copy (one read transaction,
/// the application keeps writing), read the cursor the copy was taken at (and which streams it belongs to)
/// from its own meta table — so data and cursor always match —, strip our triggers and this node's own
/// bookkeeping but keep the row clocks (stamps and tombstones: what last-writer-wins needs on the node
/// that restores it, see `ChangeLogSchema.snapshotContent`), checksum it.
public enum SnapshotMaker {
    /// `say`: progress lines while the copy is written (every `progressInterval` seconds; a large database
    /// takes minutes).
    public static func make(
        from databasePath: String, into filePath: String, nodeID: UInt64, progressInterval: Double = 2,
        say: (JobNote) -> Void = { _ in }
    ) throws -> SnapshotMetadata {
        try? FileManager.default.removeItem(atPath: filePath)
        let source = try SQLiteDatabase(existingPath: databasePath)
        clampApplicationClock(source)
        let sourceSize = Self.fileSize(databasePath) + Self.fileSize(databasePath + "-wal")
        var progress = TransferProgress("copying the database", interval: progressInterval, clock: monotonicSeconds)
        try withoutActuallyEscaping(say) { say in
            // SQLite calls back between steps of the statement; a line at most every 2 s.
            try source.reportingProgress(
                every: 1000,
                {
                    guard progress.isDue else { return }
                    if let line = progress.copyLine(written: Self.fileSize(filePath), sourceSize: sourceSize) { say(line) }
                }
            ) {
                try source.prepare("VACUUM INTO ?").run([.text(Array(filePath.utf8))])
            }
        }
        let copy = try SQLiteDatabase(existingPath: filePath)
        // The copy's row clocks as of its queue: local writes not stamped yet are (`PendingStamps`).
        if try copy.scalarInteger("SELECT count(*) FROM sqlite_master WHERE name = '\(ChangeLogSchema.meta)'") > 0 {
            // Never clamped here: the live database would not know (its queue is where a clamp is written).
            let materializer = StampMaterializer(database: copy)
            materializer.clampsApplicationClock = false
            _ = try copy.transaction { () throws(SQLiteError) -> Int in try materializer.materialize() }
        }
        let cursor = try ChangeApplier.storedCursor(in: copy)
        let streams = try StreamIdentities.read(in: copy)
        let replicated = try TableCatalog.read(copy).replicated
        let schemaHash = SchemaHash.of(replicated)
        try HarmonyLiteObjects.removeAll(from: copy, keeping: ChangeLogSchema.snapshotContent(replicated: replicated))
        try copy.execute("VACUUM")
        try copy.execute("PRAGMA journal_mode=DELETE")
        let (sha256, size) = try FileDigest.sha256(of: filePath)
        return SnapshotMetadata(
            cursor: cursor, streams: streams, schemaHash: schemaHash, sha256: sha256, size: size, nodeID: nodeID,
            createdAt: Int64(Date().timeIntervalSince1970 * 1000))
    }

    static func fileSize(_ path: String) -> Int64 {
        var status = stat()
        return stat(path, &status) == 0 ? Int64(status.st_size) : 0
    }

    /// Local writes pending in the live database whose application clock ran beyond the node's bound are
    /// clamped in its queue before the copy (`PendingStamps.clampPending`), so the copy stamps them as the
    /// live database will. Best effort: a busy database leaves them to the capturer.
    private static func clampApplicationClock(_ source: SQLiteDatabase) {
        guard (try? source.scalarInteger("SELECT count(*) FROM sqlite_master WHERE name = '\(ChangeLogSchema.meta)'")) ?? 0 > 0,
            let bound = try? PendingStamps.clockBound(in: source)
        else { return }
        _ = try? source.transaction { () throws(SQLiteError) -> Int in
            // The clock read under the write lock, as every materializer's: a `now` read before waiting for
            // the lock could be older than a capturer read's meanwhile, and clamp what that read published.
            let now = ClockBound.systemNow()
            return try PendingStamps.clampPending(limit: bound.limit(now: now), clampedTo: ClockBound.stamp(milliseconds: UInt64(max(0, now))), in: source)
        }
    }
}
