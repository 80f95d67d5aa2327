import CSQLite

#if canImport(Glibc)
import Glibc
#endif

extension SQLiteDatabase {
    /// Replaces the busy timeout: while this connection waits for a lock another connection holds, it calls
    /// `whileWaiting` between tries (1 ms, growing to 10 ms apart), and gives up with SQLITE_BUSY when
    /// `whileWaiting` answers false or after `timeoutMilliseconds` (never, when nil). `whileWaiting` must not
    /// use this connection; another one is fine (a reader never waits in WAL mode). Kept for as long as the
    /// connection lives.
    ///
    /// A worker passes a `whileWaiting` that keeps its heartbeats going and says what it waits for
    /// (`WorkerRuntime.whileWaitingForDatabase`), so an application transaction that holds the write lock
    /// for an hour makes the worker wait, never look dead.
    public func waitWhenBusy(timeoutMilliseconds: Int32?, whileWaiting: @escaping () -> Bool) {
        let waiter = BusyWaiter(timeoutMilliseconds: timeoutMilliseconds.map(Double.init), whileWaiting: whileWaiting)
        busyWaiter = waiter
        sqlite3_busy_handler(handle, busyWaiterCallback, Unmanaged.passUnretained(waiter).toOpaque())
    }
}

final class BusyWaiter {
    let timeoutMilliseconds: Double?
    let whileWaiting: () -> Bool
    var waitedMilliseconds = 0.0

    init(timeoutMilliseconds: Double?, whileWaiting: @escaping () -> Bool) {
        self.timeoutMilliseconds = timeoutMilliseconds
        self.whileWaiting = whileWaiting
    }
}

/// SQLite's busy handler for `waitWhenBusy`: `count` is the number of tries so far for this lock.
private func busyWaiterCallback(_ context: UnsafeMutableRawPointer?, _ count: Int32) -> Int32 {
    guard let context else { return 0 }
    let waiter = Unmanaged<BusyWaiter>.fromOpaque(context).takeUnretainedValue()
    if count == 0 { waiter.waitedMilliseconds = 0 }
    if let timeout = waiter.timeoutMilliseconds, waiter.waitedMilliseconds >= timeout { return 0 }
    guard waiter.whileWaiting() else { return 0 }
    let pause = Double(min(Int(count) + 1, 10))
    usleep(useconds_t(pause * 1000))
    waiter.waitedMilliseconds += pause
    return 1
}
