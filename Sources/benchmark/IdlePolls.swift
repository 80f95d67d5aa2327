import Foundation

/// How often idle processes call poll/ppoll, and how many of those calls have a zero timeout (return at once:
/// a process making many of them is spinning). Each process is traced by `strace -f` for a few seconds; each
/// strace is stopped by its own PID.
enum IdlePolls {
    struct Count {
        var name: String
        var calls: Int
        var zeroTimeout: Int
    }

    static func count(_ processes: [WatchedProcess], seconds: Double, directory: String) throws -> [Count] {
        let traces = try processes.map { process in
            let output = "\(directory)/strace-\(process.pid).txt"
            let strace = Process()
            strace.executableURL = URL(fileURLWithPath: "/usr/bin/strace")
            strace.arguments = ["-f", "-qq", "-e", "trace=poll,ppoll", "-o", output, "-p", "\(process.pid)"]
            strace.standardError = FileHandle.nullDevice
            try strace.run()
            return (process: process, strace: strace, output: output)
        }
        Thread.sleep(forTimeInterval: seconds)
        for trace in traces { kill(trace.strace.processIdentifier, SIGINT) }
        for trace in traces { trace.strace.waitUntilExit() }
        return try traces.map { trace in
            let lines = try String(contentsOfFile: trace.output, encoding: .utf8).split(separator: "\n")
            let calls = lines.filter { $0.contains("poll(") }
            return Count(name: trace.process.name, calls: calls.count, zeroTimeout: calls.filter(hasZeroTimeout).count)
        }
    }

    /// `poll([…], 2, 0)` or `ppoll([…], 2, {tv_sec=0, tv_nsec=0}, …)`, finished or not.
    static func hasZeroTimeout(_ line: Substring) -> Bool {
        line.contains(zeroPoll) || line.contains(zeroPPoll)
    }

    nonisolated(unsafe) private static let zeroPoll = try! Regex(#"(^|[^p])poll\((\[.*\]|NULL), \d+, 0(\)| <unfinished)"#)
    nonisolated(unsafe) private static let zeroPPoll = try! Regex(#"ppoll\((\[.*\]|NULL), \d+, \{tv_sec=0, tv_nsec=0\}"#)
}
