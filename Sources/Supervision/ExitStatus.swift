/// How a child process ended, as waitpid reported it.
public struct ExitStatus: Equatable, Sendable, CustomStringConvertible {
    public var code: Int32?
    public var signal: Int32?

    public static func exited(_ code: Int32) -> ExitStatus { ExitStatus(code: code, signal: nil) }
    public static func killed(by signal: Int32) -> ExitStatus { ExitStatus(code: nil, signal: signal) }

    public var isClean: Bool { code == 0 }

    public var description: String {
        if let signal { return "was killed by signal \(signal) (\(Self.signalName(signal)))" }
        return "exited with status \(code ?? -1)"
    }

    static func signalName(_ signal: Int32) -> String {
        let names: [Int32: String] = [
            1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
            8: "SIGFPE", 9: "SIGKILL", 11: "SIGSEGV", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
            24: "SIGXCPU", 25: "SIGXFSZ",
        ]
        return names[signal] ?? "signal \(signal)"
    }

    /// Signals a process dies of when an allocation fails under RLIMIT_AS (Swift traps; glibc aborts;
    /// a failed stack or mmap growth faults).
    var couldBeAllocationFailure: Bool {
        guard let signal else { return code != 0 }
        return [4, 5, 6, 7, 11].contains(signal)
    }
}
