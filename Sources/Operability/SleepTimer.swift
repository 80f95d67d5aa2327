/// `sleep_timeout` (HarmonyLite's scale-to-zero): the node stops by itself, with status 0, once nothing
/// changed for that long: no local change published and no other node's change applied. Pure: the loop
/// passes the two running totals and `now`.
public struct SleepTimer: Sendable {
    public let timeout: Double
    private var lastActivity: Double
    private var last: (published: Int64, applied: Int64)?

    /// - Parameter timeout: seconds; 0 switches it off.
    public init(timeout: Double, now: Double) {
        self.timeout = timeout
        lastActivity = now
    }

    /// Records the totals; true once they have not moved for `timeout` seconds.
    public mutating func observe(published: Int64, applied: Int64, now: Double) -> Bool {
        guard timeout > 0 else { return false }
        if let last, last != (published, applied) { lastActivity = now }
        last = (published, applied)
        return now - lastActivity >= timeout
    }

    /// Seconds left before the node sleeps, if the timer is on.
    public func remaining(now: Double) -> Double? {
        timeout > 0 ? max(0, timeout - (now - lastActivity)) : nil
    }
}
