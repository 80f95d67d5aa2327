#if canImport(Glibc)
import Glibc
#endif

/// Thin wrappers over the socket calls the IPC needs. Every descriptor is close-on-exec, so nothing leaks
/// into the processes the supervisor spawns.
public enum UnixSocket {
    /// Who is on the other end of a connected socket, as the kernel says (SO_PEERCRED).
    public struct PeerCredentials: Equatable, Sendable {
        public var pid: Int32
        public var uid: UInt32
        public var gid: UInt32
    }

    /// Binds a listening stream socket at `path` (mode 0600), replacing a stale socket file left by a
    /// previous run. Refuses to replace anything that is not a socket.
    public static func listen(path: String, backlog: Int32 = 16) throws(IPCError) -> Int32 {
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                throw IPCError(.system(call: "refusing to replace \(path), which is not a socket", errno: EEXIST))
            }
            unlink(path)
        }
        let fd = try makeSocket()
        do throws(IPCError) {
            try withAddress(path) { address, length throws(IPCError) in
                guard bind(fd, address, length) == 0 else { throw .system("bind \(path)") }
            }
            guard chmod(path, 0o600) == 0 else { throw IPCError.system("chmod \(path)") }
            guard Glibc.listen(fd, backlog) == 0 else { throw IPCError.system("listen \(path)") }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Connects to the listening socket at `path`.
    public static func connect(path: String) throws(IPCError) -> Int32 {
        let fd = try makeSocket()
        do throws(IPCError) {
            try withAddress(path) { address, length throws(IPCError) in
                var result: Int32
                repeat { result = Glibc.connect(fd, address, length) } while result != 0 && errno == EINTR
                guard result == 0 else { throw .system("connect \(path)") }
            }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Accepts one pending connection; nil when none is pending on a non-blocking listener.
    public static func accept(_ listener: Int32) throws(IPCError) -> Int32? {
        while true {
            let fd = Glibc.accept(listener, nil, nil)
            if fd >= 0 {
                // The supervisor accepts and forks on one thread, so setting close-on-exec here is not racy.
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                return fd
            }
            switch errno {
            case EINTR, ECONNABORTED: continue
            case EAGAIN, EWOULDBLOCK: return nil
            default: throw .system("accept")
            }
        }
    }

    public static func peerCredentials(_ fd: Int32) throws(IPCError) -> PeerCredentials {
        // struct ucred, which Glibc only declares under _GNU_SOURCE.
        struct UCred { var pid: Int32 = 0; var uid: UInt32 = 0; var gid: UInt32 = 0 }
        var credentials = UCred()
        var length = socklen_t(MemoryLayout<UCred>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else {
            throw .system("getsockopt(SO_PEERCRED)")
        }
        return PeerCredentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid)
    }

    public static func setNonBlocking(_ fd: Int32) throws(IPCError) {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else { throw .system("fcntl(O_NONBLOCK)") }
    }

    private static func makeSocket() throws(IPCError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system("socket(AF_UNIX)") }
        return fd
    }

    private static func withAddress(
        _ path: String,
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws(IPCError) -> Void
    ) throws(IPCError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let utf8 = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard utf8.count < capacity else { throw IPCError(.pathTooLong(path)) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: utf8)
            raw[utf8.count] = 0
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + utf8.count + 1)
        try withUnsafePointer(to: &address) { pointer throws(IPCError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address throws(IPCError) in
                try body(address, length)
            }
        }
    }
}
