#if canImport(Glibc)
import Glibc
#endif

/// A process's resident memory and CPU time from `/proc/<pid>/stat` (Linux).
public struct ProcessSample: Sendable, Equatable {
    public var residentBytes: Int64
    public var cpuSeconds: Double

    public static func read(pid: Int32) -> ProcessSample? {
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = Glibc.read(fd, &buffer, buffer.count)
        guard count > 0 else { return nil }
        return parse(
            stat: String(decoding: buffer[..<count], as: UTF8.self), ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))),
            pageSize: Int64(sysconf(Int32(_SC_PAGESIZE))))
    }

    /// Fields after the command name (which may hold spaces and parentheses, so parsing starts after its
    /// last `)`): utime and stime are fields 14 and 15, rss (pages) field 24.
    static func parse(stat: String, ticksPerSecond: Double, pageSize: Int64) -> ProcessSample? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state).
        guard fields.count > 21, let user = Double(fields[11]), let system = Double(fields[12]), let pages = Int64(fields[21]), ticksPerSecond > 0 else {
            return nil
        }
        return ProcessSample(residentBytes: pages * pageSize, cpuSeconds: (user + system) / ticksPerSecond)
    }
}
