import Supervision

#if canImport(Glibc)
import Glibc
#endif

/// Which process listens on a TCP port, for the error that says the embedded server cannot listen there:
/// the sockets from `/proc/net/tcp{,6}` (`ListeningSockets`), then the process holding one through
/// `/proc/<pid>/fd`. Best effort: another user's processes are not readable without privileges (nil then).
enum PortHolder {
    /// `python3, pid 14870`, or nil when not found.
    static func describe(port: Int) -> String? {
        var inodes: Set<String> = []
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = readSmall(table, limit: 4 << 20) else { continue }
            for inode in ListeningSockets.inodes(procNetTCP: text, port: port) { inodes.insert("socket:[\(inode)]") }
        }
        guard !inodes.isEmpty, let processes = opendir("/proc") else { return nil }
        defer { closedir(processes) }
        while let entry = readdir(processes) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let pid = Int32(name), pid != getpid(), holds(pid: pid, oneOf: inodes) else { continue }
            let command = readSmall("/proc/\(pid)/comm", limit: 64)?.split(separator: "\n").first.map(String.init) ?? "?"
            return "\(command), pid \(pid)"
        }
        return nil
    }

    private static func holds(pid: Int32, oneOf inodes: Set<String>) -> Bool {
        let directory = "/proc/\(pid)/fd"
        guard let descriptors = opendir(directory) else { return false }
        defer { closedir(descriptors) }
        var target = [CChar](repeating: 0, count: 64)
        while let entry = readdir(descriptors) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let count = readlink(directory + "/" + name, &target, target.count - 1)
            guard count > 0 else { continue }
            let link = String(decoding: target[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if inodes.contains(link) { return true }
        }
        return false
    }

    private static func readSmall(_ path: String, limit: Int) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while bytes.count < limit {
            let n = read(fd, &buffer, buffer.count)
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes.prefix(limit), as: UTF8.self)
    }
}
