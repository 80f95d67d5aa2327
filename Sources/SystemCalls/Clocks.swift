#if canImport(Glibc)
import Glibc
#endif

/// Monotonic seconds, for deadlines: only loops read it, and pass the value to the logic as `now`.
public func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Milliseconds since 1970 on the realtime clock: for timestamps people and other nodes read (the last
/// published or applied change, the apply lag against an event's HLC stamp), never for deadlines.
public func wallClockMilliseconds() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
}
