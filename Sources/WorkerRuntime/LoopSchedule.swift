/// When the worker loop wakes up and what it does then: the loop's pure core. The loop reads the clock;
/// this decides.
///
/// The handler's deadline is read once, before the wait, and compared with the clock after it. So a
/// deadline that the handler computes from the clock ("now, or later") can never keep `tick` from being
/// called: the loop waits until that value has passed and then ticks. (The old loop compared a deadline
/// read after its `now`, which such a deadline always was, and spun on zero-timeout polls.)
public struct LoopSchedule: Sendable, Equatable {
    public private(set) var nextHeartbeat: Double
    public let heartbeatInterval: Double

    public init(now: Double, heartbeatInterval: Double) {
        nextHeartbeat = now
        self.heartbeatInterval = heartbeatInterval
    }

    /// How long to wait at `now` for events, in whole microseconds, rounded up so that the wait never ends
    /// before `deadline` (a wait that ended a fraction early would wake up only to wait 0 again).
    public func waitMicroseconds(now: Double, deadline: Double?) -> Int64 {
        let wakeAt = min(nextHeartbeat, deadline ?? .infinity)
        let microseconds = ((wakeAt - now) * 1_000_000).rounded(.up)
        return Int64(max(0, min(microseconds, Double(Int32.max))))
    }

    public struct Due: Equatable, Sendable {
        /// Call the handler's `tick`.
        public var tick: Bool
        /// Send a heartbeat with the handler's counters (after the tick).
        public var heartbeat: Bool
    }

    /// What is due at `now` (read after the wait), given the deadline the handler had before the wait.
    public mutating func due(now: Double, deadline: Double?) -> Due {
        let heartbeat = now >= nextHeartbeat
        if heartbeat { nextHeartbeat = now + heartbeatInterval }
        let deadlinePassed = deadline.map { now >= $0 } ?? false
        return Due(tick: heartbeat || deadlinePassed, heartbeat: heartbeat)
    }
}
