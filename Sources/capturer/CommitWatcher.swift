import CPosix

#if canImport(Glibc)
import SystemCalls
import Glibc
#endif

/// Notices writes to the database and its WAL without polling: inotify watches on those two files, and on
/// their directory for creations and renames only (a WAL created anew, a database renamed into place), so
/// that other files written in a busy directory (`/tmp`, a log folder) wake nobody. Readable when something
/// may have changed; `PRAGMA data_version` then tells whether a commit became visible.
final class CommitWatcher {
    let fd: Int32
    private let directory: String
    private let names: Set<String>
    private var directoryWatch: Int32 = -1
    /// Watch descriptor → file name, for the files that exist.
    private var fileWatches: [Int32: String] = [:]

    private static let fileEvents = UInt32(IN_MODIFY | IN_CLOSE_WRITE)
    private static let directoryEvents = UInt32(IN_CREATE | IN_MOVED_TO)

    init(databasePath: String) throws {
        fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { throw CaptureError("inotify_init1: \(SystemError.reason(errno))") }
        let slash = databasePath.lastIndex(of: "/")!
        let directory = String(databasePath[..<slash])
        self.directory = directory.isEmpty ? "/" : directory
        let file = String(databasePath[databasePath.index(after: slash)...])
        names = [file, file + "-wal"]
        directoryWatch = inotify_add_watch(fd, self.directory, Self.directoryEvents)
        guard directoryWatch >= 0 else {
            throw CaptureError("inotify_add_watch \(self.directory): \(SystemError.reason(errno))")
        }
        for name in names { watchFile(name) }
    }

    deinit { close(fd) }

    /// Watches `name` (a file that may not exist yet: then its creation in the directory will tell).
    private func watchFile(_ name: String) {
        let watch = inotify_add_watch(fd, directory + "/" + name, Self.fileEvents)
        if watch >= 0 { fileWatches[watch] = name }
    }

    /// Consumes the pending notifications; true when one concerned the database or its WAL.
    func drain() -> Bool {
        var relevant = false
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return relevant }
            var offset = 0
            while offset + 16 <= n {
                let watch = Int32(bitPattern: UInt32(littleEndianBytes: buffer[offset..<(offset + 4)]))
                let mask = UInt32(littleEndianBytes: buffer[(offset + 4)..<(offset + 8)])
                let length = Int(UInt32(littleEndianBytes: buffer[(offset + 12)..<(offset + 16)]))
                let nameBytes = buffer[(offset + 16)..<min(n, offset + 16 + length)].prefix { $0 != 0 }
                offset += 16 + length
                if watch == directoryWatch {
                    let name = String(decoding: nameBytes, as: UTF8.self)
                    guard names.contains(name) else { continue }
                    // A new file under a watched name: watch the new one (inotify watches inodes).
                    watchFile(name)
                    relevant = true
                } else if mask & UInt32(IN_IGNORED) != 0 {
                    fileWatches[watch] = nil  // the file was deleted; its re-creation is seen in the directory
                } else if fileWatches[watch] != nil {
                    relevant = true
                }
            }
        }
    }
}

extension UInt32 {
    init(littleEndianBytes bytes: ArraySlice<UInt8>) {
        self = bytes.reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }
}

struct CaptureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
