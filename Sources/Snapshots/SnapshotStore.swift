import NATSClient

/// Where snapshots live. One snapshot per cluster: uploading replaces the previous one only once the new
/// one is whole.
public protocol SnapshotStore {
    /// The stored snapshot's metadata, nil when there is none.
    func latest() throws -> SnapshotMetadata?
    func upload(_ file: String, metadata: SnapshotMetadata, progress: (Int64, Int64) -> Void) throws
    /// Downloads the snapshot into `file`; returns its metadata.
    func download(to file: String, progress: (Int64, Int64) -> Void) throws -> SnapshotMetadata
}

/// The `nats` store: object `snapshot.db` in a JetStream object store bucket, the metadata as a header
/// of the object (so both change together), readable by NATS tools.
public struct NATSSnapshotStore: SnapshotStore {
    static let objectName = "snapshot.db"
    static let metadataHeader = "Harmonylite-Snapshot"
    let bucket: ObjectStoreBucket

    public init(connection: NATSConnection, bucket: String, replicas: Int) throws {
        self.bucket = try ObjectStoreBucket(connection: connection, bucket: bucket, replicas: replicas)
    }

    public func latest() throws -> SnapshotMetadata? {
        guard let info = try bucket.info(Self.objectName) else { return nil }
        return try metadata(of: info)
    }

    public func upload(_ file: String, metadata: SnapshotMetadata, progress: (Int64, Int64) -> Void) throws {
        let text = String(decoding: metadata.encoded(), as: UTF8.self)
        _ = try bucket.put(Self.objectName, file: file, headers: [Self.metadataHeader: [text]], progress: progress)
    }

    public func download(to file: String, progress: (Int64, Int64) -> Void) throws -> SnapshotMetadata {
        try metadata(of: try bucket.get(Self.objectName, to: file, progress: progress))
    }

    private func metadata(of info: ObjectInfo) throws -> SnapshotMetadata {
        guard let text = info.headers?[Self.metadataHeader]?.first else {
            throw SnapshotError("\(bucket.bucket)/\(Self.objectName) has no \(Self.metadataHeader) header: not a HarmonyLite snapshot")
        }
        return try SnapshotMetadata(decoding: Array(text.utf8))
    }
}

/// Why this node must restore a snapshot before it applies anything, or nil when it need not.
public enum RestoreDecision {
    /// `seqMap`: the seq map file's content (nil: missing), or the error reading it. `cursor`: the database's
    /// stored cursor. `firstSequences`: each non-empty shard stream's first sequence.
    public static func reason(seqMap: Result<[String: UInt64]?, any Error>, cursor: [String: UInt64], firstSequences: [String: UInt64]) -> String? {
        switch seqMap {
        case .failure(let error): return "the seq map cannot be read (\(error))"
        case .success(nil): return "there is no seq map"
        case .success: break
        }
        for (stream, first) in firstSequences.sorted(by: { $0.key < $1.key }) where (cursor[stream] ?? 0) + 1 < first {
            return "\(stream) starts at message \(first), past this node's position \(cursor[stream] ?? 0)"
        }
        return nil
    }
}

/// Progress lines for long transfers: percent and MB/s, at most every `interval` seconds and at the end.
public struct TransferProgress {
    let what: String
    let started: Double
    let interval: Double
    var lastReport: Double
    let clock: () -> Double

    public init(_ what: String, interval: Double = 2, clock: @escaping () -> Double) {
        self.what = what
        self.interval = interval
        self.clock = clock
        started = clock()
        lastReport = started
    }

    /// A line to log now, if it is time for one.
    public mutating func line(done: Int64, total: Int64) -> String? {
        let now = clock()
        guard now - lastReport >= interval || (done == total && total > 0) else { return nil }
        lastReport = now
        let megabytes = Double(done) / 1_048_576
        let rate = megabytes / max(now - started, 0.001)
        let percent = total > 0 ? Int(Double(done) * 100 / Double(total)) : 100
        return "\(what): \(percent)% of \(String(format: "%.1f", Double(total) / 1_048_576)) MB at \(String(format: "%.1f", rate)) MB/s"
    }
}
