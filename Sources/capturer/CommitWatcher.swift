#if canImport(Glibc)
import Glibc
#endif
import CPosix

/// Notices commits by other processes without polling: inotify on the database's directory, filtered to
/// the database file and its WAL. Readable when something may have changed; `PRAGMA data_version` then tells
/// whether it did.
final class CommitWatcher {
    let fd: Int32
    private let names: Set<String>

    init(databasePath: String) throws {
        fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { throw CaptureError("inotify_init1: \(String(cString: strerror(errno)))") }
        let slash = databasePath.lastIndex(of: "/")!
        let directory = String(databasePath[..<slash])
        let file = String(databasePath[databasePath.index(after: slash)...])
        names = [file, file + "-wal"]
        guard inotify_add_watch(fd, directory.isEmpty ? "/" : directory, UInt32(IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO)) >= 0 else {
            throw CaptureError("inotify_add_watch \(directory): \(String(cString: strerror(errno)))")
        }
    }

    deinit { close(fd) }

    /// Consumes the pending notifications; true when one concerned the database.
    func drain() -> Bool {
        var relevant = false
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return relevant }
            var offset = 0
            while offset + 16 <= n {
                let length = Int(buffer[offset + 12]) | Int(buffer[offset + 13]) << 8 | Int(buffer[offset + 14]) << 16 | Int(buffer[offset + 15]) << 24
                let nameBytes = buffer[(offset + 16)..<min(n, offset + 16 + length)].prefix { $0 != 0 }
                if names.contains(String(decoding: nameBytes, as: UTF8.self)) { relevant = true }
                offset += 16 + length
            }
        }
    }
}

struct CaptureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
