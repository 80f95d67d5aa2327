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
        let source = try SQLiteDatabase(existingPath: databasePath)
        // A copy holding a local write stamped ahead of the node's clock is not kept: such a write may still be
        // clamped in the live queue (docs/clocks.md), and the copy's row clock would then differ from the one
        // every node gets. Clamped first (what lies beyond the bound), then copied again after a pause.
        for attempt in 1...Self.copyAttempts {
            try? FileManager.default.removeItem(atPath: filePath)
            let settled = clampApplicationClock(source)
            // Without the clamp's own limit (the lock was not had): what lies ahead of the clock at the copy.
            let safe = settled ?? ClockBound.stamp(milliseconds: UInt64(max(0, ClockBound.systemNow()))) | 0xFFFF
            try copy(source, databasePath: databasePath, into: filePath, progressInterval: progressInterval, say: say)
            let ahead = try writesAhead(inCopy: filePath, beyond: safe)
            if ahead == 0 { break }
            guard attempt < Self.copyAttempts else {
                try? FileManager.default.removeItem(atPath: filePath)
                throw SnapshotError(
                    .unsettled,
                    "\(ahead) local write(s) stamped ahead of this node's clock are pending in \(databasePath), beyond what max_clock_offset settles (an application clock ahead of the node's): no snapshot now; the next attempt takes one once the capturer has clamped or stamped them"
                )
            }
            usleep(Self.copyPauseMicroseconds)
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

    static let copyAttempts = 4
    static let copyPauseMicroseconds: UInt32 = 500_000

    /// `VACUUM INTO` the file, saying how far it got.
    private static func copy(_ source: SQLiteDatabase, databasePath: String, into filePath: String, progressInterval: Double, say: (JobNote) -> Void) throws {
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
    }

    /// The copy's local writes not stamped yet whose `at` lies beyond `stamp`, which someone may still clamp
    /// in the live queue; those at or before it no one clamps (docs/clocks.md). 0 without our tables or
    /// without a bound on the clock.
    static func writesAhead(inCopy path: String, beyond stamp: UInt64) throws -> Int64 {
        let copy = try SQLiteDatabase(existingPath: path)
        let q = HarmonyLiteObjects.quoted
        guard try copy.scalarInteger("SELECT count(*) FROM sqlite_master WHERE name = '\(ChangeLogSchema.meta)'") > 0,
            try PendingStamps.clockBound(in: copy) != nil
        else { return 0 }
        let safe = Int64(bitPattern: min(stamp, UInt64(Int64.max)))
        return try copy.prepare(
            "SELECT count(*) FROM \(q(ChangeLogSchema.globalLog)) WHERE id > coalesce((SELECT value FROM \(q(ChangeLogSchema.meta)) WHERE key = 'stamped_through'), 0) AND (at > ? OR at < 0)"
        ).all([.integer(safe)]).first.flatMap { row -> Int64? in
            if case .integer(let count) = row.first { return count } else { return nil }
        } ?? 0
    }

    static func fileSize(_ path: String) -> Int64 {
        var status = stat()
        return stat(path, &status) == 0 ? Int64(status.st_size) : 0
    }

    /// Local writes pending in the live database whose application clock ran beyond the node's bound are
    /// clamped in its queue before the copy (`PendingStamps.clampPending`), so the copy stamps them as the
    /// live database will. Best effort: a busy database leaves them to the capturer.
    /// Returns the largest stamp no one clamps any more: the bound's limit at the `now` the clamp was made
    /// with (every materializer after it reads a later `now` under the lock, and none was under way); nil when
    /// there is no bound, no table of ours, or the lock was not had.
    private static func clampApplicationClock(_ source: SQLiteDatabase) -> UInt64? {
        guard (try? source.scalarInteger("SELECT count(*) FROM sqlite_master WHERE name = '\(ChangeLogSchema.meta)'")) ?? 0 > 0,
            let bound = try? PendingStamps.clockBound(in: source)
        else { return nil }
        return try? source.transaction { () throws(SQLiteError) -> UInt64 in
            // The clock read under the write lock, as every materializer's: a `now` read before waiting for
            // the lock could be older than a capturer read's meanwhile, and clamp what that read published.
            let now = ClockBound.systemNow()
            _ = try PendingStamps.clampPending(limit: bound.limit(now: now), clampedTo: ClockBound.stamp(milliseconds: UInt64(max(0, now))), in: source)
            return bound.limit(now: now)
        }
    }
}
