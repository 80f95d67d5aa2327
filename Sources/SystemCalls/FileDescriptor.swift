#if canImport(Glibc)
import Glibc
#endif

/// An open file descriptor with one owner: closed when its owner lets go of it, once. Hand the number
/// to C calls with `raw`; give up ownership with `release()` when something else will close it.
public struct FileDescriptor: ~Copyable {
    public let raw: Int32

    /// Takes ownership of a descriptor a call returned (it must be open: `>= 0`).
    public init(adopting raw: Int32) {
        precondition(raw >= 0, "FileDescriptor(adopting:) needs an open descriptor")
        self.raw = raw
    }

    /// `open(2)` with `O_CLOEXEC` added, retried while interrupted.
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0) throws(SystemError) -> FileDescriptor {
        let raw = try systemCall("open") { Glibc.open(path, flags | O_CLOEXEC, mode) }
        return FileDescriptor(adopting: raw)
    }

    /// Writes all of `bytes`, continuing after short writes and interruptions.
    public func writeAll(_ bytes: [UInt8]) throws(SystemError) {
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { buffer in Glibc.write(raw, buffer.baseAddress! + written, buffer.count - written) }
            if count >= 0 {
                written += count
            } else if errno != EINTR {
                throw SystemError.last("write")
            }
        }
    }

    /// `fsync(2)`.
    public func sync() throws(SystemError) {
        try systemCall("fsync") { fsync(raw) }
    }

    /// Gives up ownership: the caller closes the returned number.
    public consuming func release() -> Int32 {
        let raw = self.raw
        discard self
        return raw
    }

    deinit { Glibc.close(raw) }
}
