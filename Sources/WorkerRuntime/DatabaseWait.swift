/// A worker waiting for a database lock another connection holds (an application transaction that keeps
/// the write lock: a batch job, a backup with `BEGIN IMMEDIATE`): the pure core of what it says meanwhile.
/// The wait itself happens inside SQLite's busy handler; between tries the loop (`WorkerRuntime`) reads the
/// clock, asks this what to say, keeps the heartbeats going and keeps watching for a stop. So a lock held
/// for an hour is a worker that waits and says so, never one that looks dead and is replaced.
public struct DatabaseWait: Sendable, Equatable {
    /// How often a wait that lasts is logged again.
    public let reportInterval: Double
    /// Waits shorter than this are ordinary (the application commits back to back) and never reported.
    public let noticeAfter: Double
    /// When the current wait began, if one is under way.
    public private(set) var since: Double?
    private var nextReport = 0.0

    public init(reportInterval: Double = 5, noticeAfter: Double = 1) {
        self.reportInterval = reportInterval
        self.noticeAfter = noticeAfter
    }

    public enum Report: Equatable, Sendable {
        /// Still waiting, for this many whole seconds so far.
        case waiting(seconds: Int)
        /// The lock was had after this many whole seconds.
        case resumed(afterSeconds: Int)
    }

    /// Between two tries at `now`: a report when one is due (the first once the wait lasts `noticeAfter`,
    /// then every `reportInterval`).
    public mutating func tried(now: Double) -> Report? {
        guard let since else {
            since = now
            nextReport = now + noticeAfter
            return nil
        }
        guard now >= nextReport else { return nil }
        nextReport = now + reportInterval
        return .waiting(seconds: Int(now - since))
    }

    /// The worker got back to its loop at `now`: a wait under way is over. A report when it was noticed.
    public mutating func over(now: Double) -> Report? {
        guard let since else { return nil }
        self.since = nil
        return now - since >= noticeAfter ? .resumed(afterSeconds: Int(now - since)) : nil
    }

    /// For the heartbeat (`database_wait_ms`): how long the current wait lasts, 0 when none or when it is
    /// too short to notice.
    public func waitedMilliseconds(now: Double) -> Int64 {
        guard let since, now - since >= noticeAfter else { return 0 }
        return Int64(((now - since) * 1000).rounded(.down))
    }
}
