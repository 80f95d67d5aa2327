#if canImport(Glibc)
import Glibc
#endif

/// The node's private directory for sockets and generated files: mode 0700, owned by us.
public enum RunDirectory {
    /// Creates `path` (and missing parents) or checks an existing one: it must be a directory we own,
    /// and its mode is tightened to 0700.
    public static func prepare(_ path: String) throws(IPCError) {
        var info = stat()
        if stat(path, &info) != 0 {
            let parent = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
            if !parent.isEmpty && parent != path { try prepareParent(parent) }
            guard mkdir(path, 0o700) == 0 || errno == EEXIST else { throw .system("mkdir \(path)") }
            guard stat(path, &info) == 0 else { throw .system("stat \(path)") }
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw IPCError(.system(call: "run directory \(path) is not a directory", errno: ENOTDIR))
        }
        guard info.st_uid == getuid() else {
            throw IPCError(.system(call: "run directory \(path) belongs to uid \(info.st_uid), not to us", errno: EPERM))
        }
        guard chmod(path, 0o700) == 0 else { throw .system("chmod 0700 \(path)") }
    }

    private static func prepareParent(_ path: String) throws(IPCError) {
        var info = stat()
        if stat(path, &info) == 0 { return }
        let parent = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !parent.isEmpty && parent != path { try prepareParent(parent) }
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else { throw .system("mkdir \(path)") }
    }
}
