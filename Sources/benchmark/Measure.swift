import Foundation

/// Wall-clock seconds since an arbitrary start, monotonic.
func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// Nanoseconds on the realtime clock, comparable between processes of one machine.
func wallNanoseconds() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
}

/// CPU seconds and peak resident memory of a process, from /proc.
struct ProcessUsage {
    var name: String
    var cpuSeconds: Double
    var peakResidentMiB: Double

    init?(pid: Int32, name: String) {
        guard let ticks = cpuTicks(pid: pid), let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        cpuSeconds = Double(ticks) / ticksPerSecond
        let hwm = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }?.split(separator: " ").dropFirst().first
        peakResidentMiB = (Double(hwm ?? "0") ?? 0) / 1024
        self.name = name
    }
}

/// The children of a supervisor by role.
func children(of pid: Int32) -> [(String, Int32)] {
    let list = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
    return list.split(separator: " ").compactMap { text in
        guard let child = Int32(text), let cmdline = FileManager.default.contents(atPath: "/proc/\(child)/cmdline") else { return nil }
        let argv0 = String(decoding: cmdline.split(separator: 0).first ?? Data(), as: UTF8.self)
        return (argv0.split(separator: "/").last.map(String.init) ?? argv0, child)
    }
}

func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 ? getsockname(fd, $0, &length) : -1 }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

func format(_ value: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", value) }

/// Prints a line at once, unbuffered, so a failing run still shows what it measured.
func say(_ line: String = "") {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}

/// Runs SQL with the sqlite3 shell (which creates the database if needed), as an application would.
func sqliteShell(_ path: String, _ sql: String) throws {
    let shell = Process()
    shell.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
    shell.arguments = [path, sql]
    shell.standardOutput = FileHandle.nullDevice
    try shell.run()
    shell.waitUntilExit()
    guard shell.terminationStatus == 0 else { throw BenchmarkError("sqlite3 \(path) failed with status \(shell.terminationStatus)") }
}
