import ChangeEvents
import Foundation
import SystemCalls

/// The two whole procedures, with the time each step took: saving (copy, then upload) is shared by the
/// snapshotter and `harmonylite -save-snapshot`; restoring (download, then verify and write into the live
/// database) by the snapshotter and the benchmark. The scratch file lives next to the database, on the same
/// file system, and is removed whatever happens.
public enum SnapshotTransfers {
    public struct Timing: Sendable {
        /// Seconds spent on the local step (`VACUUM INTO` and checksum, or verify and backup API).
        public var local: Double
        /// Seconds spent moving bytes to or from the store.
        public var transfer: Double
    }

    /// `key`: the cluster's snapshot signing key; the metadata uploaded carries its signature.
    public static func save(
        database: String, nodeID: UInt64, store: any SnapshotStore, key: SnapshotSigningKey, say: (JobNote) -> Void
    ) throws -> (SnapshotMetadata, Timing) {
        let file = database + ".snapshot-upload"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let started = monotonicSeconds()
        let metadata = try SnapshotMaker.make(from: database, into: file, nodeID: nodeID, say: say).signed(with: key)
        let made = monotonicSeconds()
        say(
            JobNote(
                "copied the database: a snapshot to upload",
                ["seconds": JobNote.seconds(made - started), "size": ByteSize.text(metadata.size), "bytes": "\(metadata.size)"]))
        var progress = TransferProgress("uploading the snapshot", clock: monotonicSeconds)
        try store.upload(file, metadata: metadata) { done, total in
            if let line = progress.line(done: done, total: total) { say(line) }
        }
        return (metadata, Timing(local: made - started, transfer: monotonicSeconds() - made))
    }

    /// Nil when the store holds no snapshot. `currentStreams`: see `SnapshotRestorer.restore`.
    ///
    /// The metadata's signature under `key` is checked before a byte of the file is fetched (the store's
    /// newest metadata), again on the metadata the download came with (the store may have changed in
    /// between), and the file is then checked against that signed metadata (size, SHA-256) by the restorer:
    /// a `SnapshotRefusal` otherwise, and the database is not touched. `acceptUnsigned`:
    /// `snapshot.accept_unsigned`. `maxClockOffset`: row clocks stamped beyond now + it are refused (`SnapshotStampCheck`).
    /// A restore that fails for lack of disk space throws `RestoreNoSpace`, naming the database.
    public static func restore(
        into database: String, nodeID: UInt64, store: any SnapshotStore, key: SnapshotSigningKey, acceptUnsigned: Bool = false,
        currentStreams: [String: UInt64] = [:], maxClockOffset: UInt64? = nil, say: (JobNote) -> Void
    )
        throws -> (SnapshotMetadata, SnapshotRestorer.Outcome, Timing)?
    {
        try RestoreNoSpace.naming(database) {
            try restoreUnnamed(
                into: database, nodeID: nodeID, store: store, key: key, acceptUnsigned: acceptUnsigned, currentStreams: currentStreams,
                maxClockOffset: maxClockOffset, say: say)
        }
    }

    private static func restoreUnnamed(
        into database: String, nodeID: UInt64, store: any SnapshotStore, key: SnapshotSigningKey, acceptUnsigned: Bool,
        currentStreams: [String: UInt64], maxClockOffset: UInt64?, say: (JobNote) -> Void
    )
        throws -> (SnapshotMetadata, SnapshotRestorer.Outcome, Timing)?
    {
        let file = database + ".snapshot-download"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let started = monotonicSeconds()
        guard let announced = try store.latest() else { return nil }
        try announced.verifySignature(key, acceptUnsigned: acceptUnsigned)
        if announced.signature == nil { say(JobNote("restoring an unsigned snapshot (snapshot.accept_unsigned = true): its content is not authenticated")) }
        var progress = TransferProgress("downloading the snapshot", clock: monotonicSeconds)
        let downloaded = try store.download(to: file) { done, total in
            if let line = progress.line(done: done, total: total) { say(line) }
        }
        guard let metadata = downloaded else { return nil }
        try metadata.verifySignature(key, acceptUnsigned: acceptUnsigned)
        let arrived = monotonicSeconds()
        say(
            JobNote(
                "downloaded the snapshot: verifying it and restoring it into the live database",
                ["seconds": JobNote.seconds(arrived - started), "size": ByteSize.text(metadata.size), "bytes": "\(metadata.size)"]))
        let outcome = try SnapshotRestorer.restore(
            file, metadata: metadata, into: database, nodeID: nodeID, currentStreams: currentStreams,
            clockBound: maxClockOffset.map { ClockBound(maxOffsetMilliseconds: $0) }, say: say)
        return (metadata, outcome, Timing(local: monotonicSeconds() - arrived, transfer: arrived - started))
    }
}
