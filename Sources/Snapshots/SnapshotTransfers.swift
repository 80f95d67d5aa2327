import ChangeEvents
import Foundation
import Signals

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

    public static func save(database: String, nodeID: UInt64, store: any SnapshotStore, say: (String) -> Void) throws -> (SnapshotMetadata, Timing) {
        let file = database + ".snapshot-upload"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let started = monotonicSeconds()
        let metadata = try SnapshotMaker.make(from: database, into: file, nodeID: nodeID)
        let made = monotonicSeconds()
        var progress = TransferProgress("uploading the snapshot", clock: monotonicSeconds)
        try store.upload(file, metadata: metadata) { done, total in
            if let line = progress.line(done: done, total: total) { say(line) }
        }
        return (metadata, Timing(local: made - started, transfer: monotonicSeconds() - made))
    }

    /// Nil when the store holds no snapshot. `currentStreams`: see `SnapshotRestorer.restore`.
    public static func restore(into database: String, nodeID: UInt64, store: any SnapshotStore, currentStreams: [String: UInt64] = [:],
                               maxClockOffset: UInt64? = nil, say: (String) -> Void)
        throws -> (SnapshotMetadata, SnapshotRestorer.Outcome, Timing)?
    {
        let file = database + ".snapshot-download"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let started = monotonicSeconds()
        var progress = TransferProgress("downloading the snapshot", clock: monotonicSeconds)
        let downloaded = try store.download(to: file) { done, total in
            if let line = progress.line(done: done, total: total) { say(line) }
        }
        guard let metadata = downloaded else { return nil }
        let arrived = monotonicSeconds()
        let outcome = try SnapshotRestorer.restore(file, metadata: metadata, into: database, nodeID: nodeID, currentStreams: currentStreams,
                                                   clockBound: maxClockOffset.map { ClockBound(maxOffsetMilliseconds: $0) })
        return (metadata, outcome, Timing(local: monotonicSeconds() - arrived, transfer: arrived - started))
    }
}
