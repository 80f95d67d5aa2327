import CPosix

#if canImport(Glibc)
import Glibc
#endif

/// poll(2), the one wait every loop of ours blocks in (the supervisor's, every worker's, the HTTP server's,
/// a frame connection's). The descriptors' `revents` say which are ready.
public enum Poll {
    /// Waits up to `timeoutMilliseconds` (-1: no limit) for an event on `descriptors`. Returns how many have
    /// events (0: the time is up), or nil when a signal interrupted the wait: the caller goes round its loop
    /// (it reads its signal descriptor there) and waits again with a fresh timeout.
    public static func wait(_ descriptors: inout [pollfd], timeoutMilliseconds: Int32) throws(SystemError) -> Int? {
        try wait(&descriptors, timeoutMicroseconds: timeoutMilliseconds < 0 ? -1 : Int64(timeoutMilliseconds) * 1000)
    }

    /// Waits up to `timeoutMicroseconds` (negative: no limit), with ppoll(2)'s microsecond timeout: a worker's
    /// loop waits for deadlines a fraction of a millisecond away (the capturer's first recheck of a commit
    /// that was not visible yet), which poll(2)'s whole milliseconds would round up to 1–2 ms.
    public static func wait(_ descriptors: inout [pollfd], timeoutMicroseconds: Int64) throws(SystemError) -> Int? {
        let result = hl_poll_microseconds(&descriptors, UInt(descriptors.count), timeoutMicroseconds)
        if result >= 0 { return Int(result) }
        let code = errno
        if code == EINTR { return nil }
        throw SystemError(call: "ppoll", code: code)
    }

    /// A descriptor to watch for `events` (`POLLIN` by default).
    public static func watch(_ fd: Int32, _ events: Int32 = POLLIN) -> pollfd { pollfd(fd: fd, events: Int16(events), revents: 0) }
}
