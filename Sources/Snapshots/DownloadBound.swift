import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A snapshot's size comes from its metadata, which whoever can write to the store controls: it is checked
/// against the disk before the first byte is fetched, and the transfer is stopped at that size (the
/// stores pass it on as the most bytes they accept).
public enum DownloadBound {
    /// Free space left on the file system after a download, so the database itself can still grow.
    public static let reserve: Int64 = 64 << 20

    /// Throws when `metadata.size` does not fit on the file system that will hold `file`.
    public static func check(_ metadata: SnapshotMetadata, into file: String) throws(SnapshotError) {
        let directory = (file as NSString).deletingLastPathComponent
        var info = statvfs()
        guard statvfs(directory.isEmpty ? "." : directory, &info) == 0 else { return }
        let (free, overflow) = Int64(clamping: info.f_bavail).multipliedReportingOverflow(by: Int64(clamping: info.f_frsize))
        let available = overflow ? Int64.max : free
        guard metadata.size <= available - min(available, reserve) else {
            throw SnapshotError(
                .noSpace,
                "the snapshot is \(metadata.size) bytes by its metadata; \(directory) has \(available) bytes free (keeping \(reserve) spare): not downloaded")
        }
    }
}
