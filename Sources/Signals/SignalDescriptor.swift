import CPosix

#if canImport(Glibc)
import SystemCalls
import Glibc
#endif

/// Signals as readable events: blocks the given signals for the process and delivers them through a
/// signalfd, so a poll loop handles SIGCHLD, SIGTERM and SIGHUP like any other input, with no async
/// signal handlers. Create it before any thread starts so every thread inherits the blocked mask.
public final class SignalDescriptor {
    public let fd: Int32

    public init(signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        fd = signalfd(-1, &set, Int32(SFD_CLOEXEC | SFD_NONBLOCK))
        precondition(fd >= 0, "signalfd failed: \(SystemError.reason(errno))")
    }

    deinit { close(fd) }

    /// The signals that arrived since the last call (each once per arrival; standard signals coalesce).
    public func drain() -> [Int32] {
        var received: [Int32] = []
        var info = signalfd_siginfo()
        let size = MemoryLayout<signalfd_siginfo>.size
        while read(fd, &info, size) == size { received.append(Int32(info.ssi_signo)) }
        return received
    }

    /// Ignore SIGPIPE: a write to a closed socket then fails with EPIPE, which the IPC reports as an error.
    public static func ignoreBrokenPipes() {
        signal(SIGPIPE, SIG_IGN)
    }
}
