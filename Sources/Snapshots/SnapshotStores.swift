import HarmonyConfig
import NATSClient

/// The store `snapshot.store` names, opened from the node's configuration.
public enum SnapshotStores {
    /// The `nats` store's bucket when `snapshot.nats.bucket` is empty.
    private static func natsBucket(_ config: Configuration) -> String { config.snapshotObjectBucket }

    /// `connection` is used by the `nats` store only.
    public static func open(_ config: Configuration, connection: NATSConnection?) throws -> any SnapshotStore {
        switch config.snapshot.store {
        case "nats":
            guard let connection else { throw SnapshotError(.configuration, "the nats snapshot store needs a NATS connection") }
            return try NATSSnapshotStore(connection: connection, bucket: natsBucket(config), replicas: config.snapshot.nats.replicas)
        case "s3":
            return try S3SnapshotStore(config.snapshot.s3)
        case "webdav":
            return DirectorySnapshotStore(directory: try WebDAVDirectory(url: config.snapshot.webdav.url))
        case "sftp":
            return DirectorySnapshotStore(directory: try SFTPDirectory(url: config.snapshot.sftp.url))
        default:  // the configuration accepts only the four names
            throw SnapshotError(.configuration, "unknown snapshot.store \"\(config.snapshot.store)\"")
        }
    }
}
