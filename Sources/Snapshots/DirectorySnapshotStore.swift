import CurlTransfer
import Foundation

/// A directory on a file server (WebDAV, SFTP), as the snapshot stores see it.
protocol SnapshotDirectory {
    /// What the store is, for messages.
    var description: String { get }
    /// Names of the files in the directory (none when it does not exist yet).
    func list() throws -> [String]
    func put(_ upload: CurlRequest.Upload, as name: String, progress: (Int64, Int64) -> Void) throws
    /// Downloads `name` into `file`, at most `maximumBytes`; throws when it is missing or larger.
    func get(_ name: String, into file: String, maximumBytes: Int64, progress: (Int64, Int64) -> Void) throws
    /// The content of a small file.
    func read(_ name: String) throws -> [UInt8]
    func delete(_ name: String) throws
}

/// The `webdav` and `sftp` stores: plain files, so no rename-over is needed (SFTP servers refuse one).
/// Each snapshot is `snapshot-<created ms>-<sha256 prefix>.db` plus its metadata in a `.json` of the same
/// stem, written after the data: a metadata file means a complete snapshot. The newest metadata file wins;
/// older snapshots are deleted once a newer one is complete.
struct DirectorySnapshotStore: SnapshotStore {
    let directory: any SnapshotDirectory

    static func stem(of metadata: SnapshotMetadata) -> String {
        let created = String(metadata.createdAt)
        return "snapshot-" + String(repeating: "0", count: max(0, 13 - created.count)) + created + "-" + metadata.sha256.prefix(16)
    }

    /// Complete snapshots' stems, newest first.
    private func stems() throws -> [String] {
        try directory.list().filter { $0.hasPrefix("snapshot-") && $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted(by: >)
    }

    func latest() throws -> SnapshotMetadata? {
        guard let newest = try stems().first else { return nil }
        return try SnapshotMetadata(decoding: try directory.read(newest + ".json"))
    }

    func upload(_ file: String, metadata: SnapshotMetadata, progress: (Int64, Int64) -> Void) throws {
        let stem = Self.stem(of: metadata)
        try directory.put(.file(file), as: stem + ".db", progress: progress)
        try directory.put(.bytes(metadata.encoded()), as: stem + ".json") { _, _ in }
        // Older snapshots: metadata first, so none is ever listed without its data.
        let names = try directory.list()
        for name in names.sorted() where name.hasPrefix("snapshot-") && name < stem && name.hasSuffix(".json") { try? directory.delete(name) }
        for name in names.sorted() where name.hasPrefix("snapshot-") && name < stem && name.hasSuffix(".db") { try? directory.delete(name) }
    }

    func download(to file: String, progress: (Int64, Int64) -> Void) throws -> SnapshotMetadata? {
        guard let metadata = try latest() else { return nil }
        try DownloadBound.check(metadata, into: file)
        try directory.get(Self.stem(of: metadata) + ".db", into: file, maximumBytes: metadata.size, progress: progress)
        return metadata
    }
}
