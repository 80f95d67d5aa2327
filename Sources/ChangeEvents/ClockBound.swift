#if canImport(Glibc)
import Glibc
#endif

/// The bound on time (`max_clock_offset`): how far a stamp may lie ahead of this node's clock before it is
/// called a stamp from the future. Stamps are HLC (milliseconds since 1970 in the high 48 bits, a counter
/// in the low 16), compared as unsigned 64-bit numbers. Pure: `now` (ms since 1970) is passed in.
///
/// The bound reports, it does not refuse: a remote event beyond it is still applied (every node must hold
/// the same rows after the same changes); it is counted and logged. Snapshots are refused, and local
/// writes stamped by the application's clock are clamped to the node's (docs/clocks.md).
public struct ClockBound: Sendable, Equatable {
    public var maxOffsetMilliseconds: UInt64

    public static let defaultMaxOffsetMilliseconds: UInt64 = 500

    public init(maxOffsetMilliseconds: UInt64 = ClockBound.defaultMaxOffsetMilliseconds) {
        self.maxOffsetMilliseconds = maxOffsetMilliseconds
    }

    /// This machine's realtime clock, ms since 1970: what the glue passes as `now`.
    public static func systemNow() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }

    /// The HLC stamp of `milliseconds` with counter 0 (saturating: a time past 2^48 ms is the largest stamp).
    public static func stamp(milliseconds: UInt64) -> UInt64 {
        milliseconds > UInt64.max >> 16 ? UInt64.max & ~0xFFFF : milliseconds << 16
    }

    /// The milliseconds since 1970 of an HLC stamp.
    public static func milliseconds(of stamp: UInt64) -> UInt64 { stamp >> 16 }

    /// The largest stamp within the bound at `now` (ms since 1970): every counter of `now + max offset`.
    /// Compute it once per batch; the per-event check is then one integer comparison.
    public func limit(now: Int64) -> UInt64 {
        let nowMs = UInt64(max(0, now))
        let (sum, overflow) = nowMs.addingReportingOverflow(maxOffsetMilliseconds)
        if overflow || sum > UInt64.max >> 16 { return .max }
        return sum << 16 | 0xFFFF
    }

    /// How long after its `now` a materializer that clamped may still commit: half the bound. The capturer's
    /// reader reads outside the write lock only writes at or before its own `now`, and a materializer clamps
    /// only what lies beyond its `now` plus the bound; so a clamp that is visible within the bound of its
    /// `now` never changes a write such a read published (`ChangeApplier` starts again when it is later,
    /// leaving the other half for the commit itself; docs/clocks.md).
    public var clampCommitMilliseconds: Int64 { Int64(clamping: maxOffsetMilliseconds / 2) }

    public func check(stamp: UInt64, now: Int64) -> ClockCheck {
        guard stamp > limit(now: now) else { return .within }
        return .ahead(milliseconds: Self.milliseconds(of: stamp) &- UInt64(max(0, now)))
    }
}

/// A stamp against the bound: within it, or ahead of `now` by `milliseconds` (more than the bound).
public enum ClockCheck: Sendable, Equatable {
    case within
    case ahead(milliseconds: UInt64)
}

/// Estimates, from the remote stamps this node applies, how far other nodes' clocks run ahead of its own.
///
/// A fresh stamp's time minus its arrival time is the origin's clock offset minus the time the change
/// took to travel (never negative): a lower bound of the offset. Per origin the estimator keeps the
/// largest such value seen within `window` milliseconds (older maxima are replaced: a clock that was
/// corrected stops being reported after one window). Pure: times are passed in (ms since 1970 for the
/// stamps' clock, any monotonic ms for `observedAt`).
public struct ClockOffsetEstimator: Sendable, Equatable {
    public struct Estimate: Sendable, Equatable {
        public var origin: UInt64
        /// How far ahead of this node's clock the origin's stamps arrived (negative: behind, as normal).
        public var aheadMilliseconds: Int64
        public var observedAt: Int64
    }

    public var window: Int64
    public private(set) var byOrigin: [UInt64: Estimate] = [:]

    public init(window: Int64 = 60_000) { self.window = window }

    /// One batch's newest stamp from `origin`, applied at `now` (ms since 1970, this node's clock);
    /// `observedAt` on a monotonic clock, for the window.
    public mutating func observe(origin: UInt64, newestStamp: UInt64, now: Int64, observedAt: Int64) {
        let stampMs = Int64(clamping: ClockBound.milliseconds(of: newestStamp))
        let ahead = stampMs.subtractingReportingOverflow(now)
        let value = ahead.overflow ? (stampMs > now ? Int64.max : Int64.min) : ahead.partialValue
        if let kept = byOrigin[origin], kept.aheadMilliseconds >= value, observedAt - kept.observedAt < window { return }
        byOrigin[origin] = Estimate(origin: origin, aheadMilliseconds: value, observedAt: observedAt)
    }

    /// The origin whose clock runs farthest ahead among the estimates still in the window at `observedAt`.
    public func farthestAhead(at observedAt: Int64) -> Estimate? {
        byOrigin.values.filter { observedAt - $0.observedAt < window }
            .max { ($0.aheadMilliseconds, $1.origin) < ($1.aheadMilliseconds, $0.origin) }
    }

    /// Whether this node's clock is behind `estimate`'s origin by more than the bound.
    public static func isBehind(_ estimate: Estimate, bound: ClockBound) -> Bool {
        estimate.aheadMilliseconds > Int64(clamping: bound.maxOffsetMilliseconds)
    }
}

/// Lets a repeated log line through at most once per `interval` (any monotonic unit), counting the
/// occurrences it held back. Pure.
public struct RateLimit: Sendable, Equatable {
    public var interval: Int64
    private var last: Int64?
    private var held: Int64 = 0

    public init(interval: Int64) { self.interval = interval }

    /// Nil when this occurrence is held back; else how many were held back since the last one let through.
    public mutating func allow(now: Int64) -> Int64? {
        if let last, now - last < interval {
            held += 1
            return nil
        }
        last = now
        defer { held = 0 }
        return held
    }
}
