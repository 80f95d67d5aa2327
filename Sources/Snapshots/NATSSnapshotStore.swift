import NATSClient

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

    public func download(to file: String, progress: (Int64, Int64) -> Void) throws -> SnapshotMetadata? {
        try bucket.get(Self.objectName, to: file, progress: progress).map(metadata(of:))
    }

    private func metadata(of info: ObjectInfo) throws -> SnapshotMetadata {
        guard let text = info.headers?[Self.metadataHeader]?.first else {
            throw SnapshotError("\(bucket.bucket)/\(Self.objectName) has no \(Self.metadataHeader) header: not a HarmonyLite snapshot")
        }
        return try SnapshotMetadata(decoding: Array(text.utf8))
    }
}
