import Foundation

/// CPU ticks (user + system, all threads) a process has used since it started, from /proc/<pid>/stat; nil
/// once it is gone.
func cpuTicks(pid: Int32) -> UInt64? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
    let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
    guard fields.count > 12, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
    return user + system
}

let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

/// A named process the benchmark watches, e.g. "n1 capturer".
struct WatchedProcess {
    var name: String
    var pid: Int32
}

/// The CPU ticks of a set of processes at one moment: read at the start and at the end of a measurement
/// window, so the difference is what the window cost and nothing of start-up.
struct CPUSample {
    let taken: Double
    let ticks: [String: (pid: Int32, ticks: UInt64)]

    init(_ processes: [WatchedProcess]) {
        taken = now()
        var ticks: [String: (pid: Int32, ticks: UInt64)] = [:]
        for process in processes {
            if let used = cpuTicks(pid: process.pid) { ticks[process.name] = (process.pid, used) }
        }
        self.ticks = ticks
    }
}

/// Percent of one core each process used between two samples (100 = one core busy); a process that exited
/// or was replaced in between has no entry.
struct CPUWindow {
    var seconds: Double
    var percent: [String: Double]

    init(from start: CPUSample, to end: CPUSample) {
        seconds = end.taken - start.taken
        var percent: [String: Double] = [:]
        for (name, before) in start.ticks {
            guard let after = end.ticks[name], after.pid == before.pid else { continue }
            percent[name] = Double(after.ticks - before.ticks) / ticksPerSecond / seconds * 100
        }
        self.percent = percent
    }
}
