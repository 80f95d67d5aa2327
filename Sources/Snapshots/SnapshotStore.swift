/// Where snapshots live. One snapshot per cluster: uploading replaces the previous one only once the new
/// one is whole.
public protocol SnapshotStore {
    /// The stored snapshot's metadata, nil when there is none.
    func latest() throws -> SnapshotMetadata?
    func upload(_ file: String, metadata: SnapshotMetadata, progress: (Int64, Int64) -> Void) throws
    /// Downloads the snapshot into `file`; returns its metadata, nil when the store holds none.
    func download(to file: String, progress: (Int64, Int64) -> Void) throws -> SnapshotMetadata?
}
