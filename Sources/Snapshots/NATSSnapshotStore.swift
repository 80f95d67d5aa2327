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
        // The header and the object's size must agree, and fit on disk, before a byte is fetched.
        let check: (ObjectInfo) throws -> Void = { info in
            let metadata = try metadata(of: info)
            guard metadata.size == info.size else {
                throw SnapshotError(
                    .refused, "\(bucket.bucket)/\(Self.objectName) holds \(info.size) bytes, its metadata says \(metadata.size): not downloaded")
            }
            try DownloadBound.check(metadata, into: file)
        }
        return try bucket.get(Self.objectName, to: file, check: check, progress: progress).map(metadata(of:))
    }

    private func metadata(of info: ObjectInfo) throws -> SnapshotMetadata {
        guard let text = info.headers?[Self.metadataHeader]?.first else {
            throw SnapshotError(.refused, "\(bucket.bucket)/\(Self.objectName) has no \(Self.metadataHeader) header: not a HarmonyLite snapshot")
        }
        return try SnapshotMetadata(decoding: Array(text.utf8))
    }
}
