#if canImport(Glibc)
import Glibc
#endif

/// Milliseconds since 1970 on the realtime clock: for timestamps people and other nodes read (the last
/// published or applied change, the apply lag against an event's HLC stamp), never for deadlines.
public func wallClockMilliseconds() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
}
