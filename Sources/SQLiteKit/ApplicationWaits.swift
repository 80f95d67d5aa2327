import CSQLite

#if canImport(Glibc)
import Glibc
#endif

/// What an application's connection spends waiting on others, for the benchmark that plays the application:
/// busy waits (its write found the lock taken, and it slept) and the WAL checkpoints its commits ran. The
/// connection behaves exactly as with SQLite's defaults; only the counting is added.
public final class ApplicationWaits {
    /// Times the busy handler slept, and how long in all (µs, measured).
    public private(set) var busyWaits = 0
    public private(set) var busyMicroseconds: Int64 = 0
    /// Lock requests that waited at least once (one per write that found the lock taken).
    public private(set) var busyRequests = 0
    /// Automatic checkpoints this connection's commits ran, and how long they took in all (µs).
    public private(set) var checkpoints = 0
    public private(set) var checkpointMicroseconds: Int64 = 0
    let timeoutMilliseconds: Int32
    let autocheckpointFrames: Int32

    init(timeoutMilliseconds: Int32, autocheckpointFrames: Int32) {
        self.timeoutMilliseconds = timeoutMilliseconds
        self.autocheckpointFrames = autocheckpointFrames
    }

    /// SQLite's default busy handler (`sqliteDefaultBusyCallback`, where the system has usleep): sleeps of 1,
    /// 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 then 100 ms, until the timeout.
    static let delays: [Int32] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100]

    /// The sleep before try `count + 1`, or nil: give up (as SQLite's handler decides it).
    static func delay(afterTries count: Int32, timeoutMilliseconds: Int32) -> Int32? {
        let index = Int(count)
        let prior: Int32
        var delay: Int32
        if index < delays.count {
            delay = delays[index]
            prior = delays[..<index].reduce(0, +)
        } else {
            delay = delays.last!
            prior = delays.reduce(0, +) + delay * Int32(index - delays.count)
        }
        if prior + delay > timeoutMilliseconds {
            delay = timeoutMilliseconds - prior
            if delay <= 0 { return nil }
        }
        return delay
    }

    fileprivate func busy(tries count: Int32) -> Int32 {
        guard let delay = Self.delay(afterTries: count, timeoutMilliseconds: timeoutMilliseconds) else { return 0 }
        if count == 0 { busyRequests += 1 }
        let started = Self.microseconds()
        usleep(useconds_t(delay) * 1000)
        busyWaits += 1
        busyMicroseconds += Self.microseconds() - started
        return 1
    }

    fileprivate func committed(_ database: OpaquePointer?, _ name: UnsafePointer<CChar>?, frames: Int32) {
        guard autocheckpointFrames > 0, frames >= autocheckpointFrames else { return }
        let started = Self.microseconds()
        sqlite3_wal_checkpoint(database, name)
        checkpoints += 1
        checkpointMicroseconds += Self.microseconds() - started
    }

    static func microseconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec) / 1000
    }
}

extension SQLiteDatabase {
    /// Counts this connection's busy waits and automatic checkpoints (`ApplicationWaits`), with the behaviour
    /// of SQLite's defaults: the busy timeout given, and a checkpoint after a commit that leaves the WAL with
    /// `autocheckpointFrames` frames or more (SQLite's default 1,000). For the benchmark's application.
    public func countWaits(timeoutMilliseconds: Int32 = 5000, autocheckpointFrames: Int32 = 1000) -> ApplicationWaits {
        let waits = ApplicationWaits(timeoutMilliseconds: timeoutMilliseconds, autocheckpointFrames: autocheckpointFrames)
        busyWaiter = waits
        let context = Unmanaged.passUnretained(waits).toOpaque()
        sqlite3_busy_handler(handle, applicationBusyCallback, context)
        sqlite3_wal_hook(handle, applicationWALCallback, context)
        return waits
    }
}

private func applicationBusyCallback(_ context: UnsafeMutableRawPointer?, _ count: Int32) -> Int32 {
    guard let context else { return 0 }
    return Unmanaged<ApplicationWaits>.fromOpaque(context).takeUnretainedValue().busy(tries: count)
}

private func applicationWALCallback(_ context: UnsafeMutableRawPointer?, _ database: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ frames: Int32) -> Int32 {
    guard let context else { return SQLITE_OK }
    Unmanaged<ApplicationWaits>.fromOpaque(context).takeUnretainedValue().committed(database, name, frames: frames)
    return SQLITE_OK
}
