import IPC

/// One shard stream's deliveries waiting to apply, and what a failure of its first one left: a stream
/// waiting for a retry holds back only its own deliveries.
struct StreamLane: Sendable {
    struct Queued: Sendable {
        var delivery: DataMessage.Delivery
        /// The broker frame it came in: a credit is returned once all of a frame's deliveries are done.
        var frame: UInt64
    }

    /// The first delivery failed: when it is tried again, and what the failures so far were.
    struct Hold: Sendable {
        var retryAt: Double
        /// The wait after the next failure.
        var nextBackoff: Double
        /// Failed attempts of this delivery.
        var attempts: Int
        var reason: String
    }

    var queue: [Queued] = []
    /// After a failed group of several deliveries: one at a time until the queue has drained, so the ones
    /// before a failing one get through and the failure names one delivery.
    var oneAtATime = false
    var hold: Hold?

    /// Whether its first delivery may be tried at `now`.
    func isReady(now: Double) -> Bool { !queue.isEmpty && (hold.map { $0.retryAt <= now } ?? true) }
}
