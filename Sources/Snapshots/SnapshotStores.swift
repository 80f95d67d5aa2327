import HarmonyConfig
import NATSClient

/// The store `snapshot.store` names, opened from the node's configuration.
public enum SnapshotStores {
    /// The `nats` store's bucket when `snapshot.nats.bucket` is empty.
    public static func natsBucket(_ config: Configuration) -> String {
        config.snapshot.nats.bucket.isEmpty ? config.nats.streamPrefix + "-snapshot-store" : config.snapshot.nats.bucket
    }

    /// The stores this version can open.
    public static let available = ["nats", "s3", "webdav", "sftp"]

    /// `connection` is used by the `nats` store only.
    public static func open(_ config: Configuration, connection: NATSConnection?) throws -> any SnapshotStore {
        switch config.snapshot.store {
        case "nats":
            guard let connection else { throw SnapshotError("the nats snapshot store needs a NATS connection") }
            return try NATSSnapshotStore(connection: connection, bucket: natsBucket(config), replicas: config.snapshot.nats.replicas)
        case "s3":
            return try S3SnapshotStore(config.snapshot.s3)
        case "webdav":
            return DirectorySnapshotStore(directory: try WebDAVDirectory(url: config.snapshot.webdav.url))
        case "sftp":
            return DirectorySnapshotStore(directory: try SFTPDirectory(url: config.snapshot.sftp.url))
        default:
            throw unavailable(config.snapshot.store)
        }
    }

    public static func unavailable(_ store: String) -> SnapshotError {
        SnapshotError("snapshot.store = \"\(store)\" is not available in this version (available: \(available.joined(separator: ", "))); choose one of those or set snapshot.enabled = false")
    }
}
