#if canImport(Glibc)
import Glibc
#endif

// TEMPORARY (idle-outlier investigation): HL_DEBUG_TRACE=<file> appends one line per stage,
// "<CLOCK_REALTIME µs> <label> <pid> <what>", one write(2) per line (O_APPEND: processes share the file).
public enum DebugTrace {
    nonisolated(unsafe) public static var label = "?"
    nonisolated(unsafe) static let fd: Int32 = {
        guard let path = getenv("HL_DEBUG_TRACE") else { return -1 }
        return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
    }()

    public static var enabled: Bool { fd >= 0 }

    public static func point(_ what: @autoclosure () -> String) {
        guard fd >= 0 else { return }
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        let micros = Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec) / 1000
        let line = "\(micros) \(label) \(getpid()) \(what())\n"
        _ = line.withCString { write(fd, $0, strlen($0)) }
    }
}
