import TestSupport
import Testing

@testable import ChangeEvents

/// The bound on time (`ClockBound`), the offset estimate and the log rate limit: pure, `now` passed in.
@Suite struct ClockBoundTests {
    static let now: Int64 = 1_800_000_000_000
    static func stamp(_ ms: Int64, counter: UInt64 = 0) -> UInt64 { UInt64(ms) << 16 | counter }

    @Test func aStampIsWithinUpToEveryCounterOfNowPlusTheBoundAndAheadBeyond() {
        let bound = ClockBound(maxOffsetMilliseconds: 500)
        #expect(ClockBound().maxOffsetMilliseconds == 500)
        #expect(bound.check(stamp: Self.stamp(Self.now), now: Self.now) == .within)
        #expect(bound.check(stamp: Self.stamp(Self.now - 3_600_000), now: Self.now) == .within)
        #expect(bound.check(stamp: Self.stamp(Self.now + 500, counter: 0xFFFF), now: Self.now) == .within)
        #expect(bound.check(stamp: Self.stamp(Self.now + 501), now: Self.now) == .ahead(milliseconds: 501))
        #expect(bound.check(stamp: Self.stamp(Self.now + 10_000, counter: 7), now: Self.now) == .ahead(milliseconds: 10_000))
        #expect(bound.limit(now: Self.now) == Self.stamp(Self.now + 500, counter: 0xFFFF))
        // Unsigned: a stamp with the top bit set (2^63: negative as SQLite stores it) is far ahead, not behind.
        #expect(bound.check(stamp: UInt64(1) << 63, now: Self.now) == .ahead(milliseconds: (UInt64(1) << 47) - UInt64(Self.now)))
        #expect(bound.check(stamp: .max, now: Self.now) != .within)
        #expect(bound.check(stamp: UInt64(1) << 62, now: Self.now) != .within)
    }

    /// The invariant behind the capturer's reads outside the write lock (docs/clocks.md): whatever a
    /// materializer clamps with its `now` lies beyond what a read whose `now` is within the bound after it
    /// takes outside the lock (writes at or before the reader's own clock), so a clamp visible within the
    /// bound of its `now` never changes a write such a read published. Seeded, over bounds, times and stamps.
    @Test func whatAMaterializerClampsAReadOutsideTheLockDoesNotTake() {
        var random = SplitMix64(seed: 20_261_207)
        for _ in 0..<20_000 {
            let bound = ClockBound(maxOffsetMilliseconds: UInt64(random.next() % 120_000))
            let materializerNow = Self.now + Int64(random.next() % 10_000)
            let readerNow = materializerNow + Int64(random.next() % (bound.maxOffsetMilliseconds + 1))
            let at = Self.stamp(materializerNow + Int64(random.next() % 240_000), counter: random.next() & 0xFFFF)
            guard at > bound.limit(now: materializerNow) else { continue }
            #expect(at > Self.stamp(readerNow, counter: 0xFFFF), "\(bound) \(materializerNow) \(readerNow) \(at)")
        }
        #expect(ClockBound().clampCommitMilliseconds == 250)
    }

    @Test func extremeClocksAndBoundsSaturateInsteadOfOverflowing() {
        #expect(ClockBound(maxOffsetMilliseconds: .max).limit(now: Self.now) == .max)
        #expect(ClockBound(maxOffsetMilliseconds: 500).limit(now: .max) == .max)
        #expect(ClockBound(maxOffsetMilliseconds: 500).limit(now: -5) == Self.stamp(500, counter: 0xFFFF))
        #expect(ClockBound(maxOffsetMilliseconds: .max).check(stamp: .max, now: Self.now) == .within)
        #expect(ClockBound.stamp(milliseconds: UInt64(Self.now)) == Self.stamp(Self.now))
        #expect(ClockBound.stamp(milliseconds: .max) == UInt64.max & ~UInt64(0xFFFF))
        #expect(ClockBound.milliseconds(of: Self.stamp(Self.now, counter: 3)) == UInt64(Self.now))
    }

    @Test func theEstimateIsTheLargestLeadPerOriginWithinTheWindow() {
        var estimator = ClockOffsetEstimator(window: 60_000)
        #expect(estimator.farthestAhead(at: 0) == nil)
        // Node 2's stamps arrive 30 ms behind (transit): normal. Node 3's arrive 10 s ahead.
        estimator.observe(origin: 2, newestStamp: Self.stamp(Self.now - 30), now: Self.now, observedAt: 1000)
        #expect(estimator.farthestAhead(at: 1000)?.aheadMilliseconds == -30)
        #expect(!ClockOffsetEstimator.isBehind(estimator.farthestAhead(at: 1000)!, bound: ClockBound()))
        estimator.observe(origin: 3, newestStamp: Self.stamp(Self.now + 10_000), now: Self.now, observedAt: 1000)
        // An older change of node 3 (a catch-up) does not lower the estimate.
        estimator.observe(origin: 3, newestStamp: Self.stamp(Self.now - 120_000), now: Self.now + 500, observedAt: 1500)
        let farthest = estimator.farthestAhead(at: 2000)
        #expect(farthest?.origin == 3 && farthest?.aheadMilliseconds == 10_000)
        #expect(ClockOffsetEstimator.isBehind(farthest!, bound: ClockBound(maxOffsetMilliseconds: 500)))
        #expect(!ClockOffsetEstimator.isBehind(farthest!, bound: ClockBound(maxOffsetMilliseconds: 10_000)))
        // Once its clock is fixed, node 3's lead is forgotten after one window.
        estimator.observe(origin: 3, newestStamp: Self.stamp(Self.now + 70_000 - 20), now: Self.now + 70_000, observedAt: 70_000)
        estimator.observe(origin: 3, newestStamp: Self.stamp(Self.now + 71_000 - 20), now: Self.now + 71_000, observedAt: 71_000)
        #expect(estimator.farthestAhead(at: 71_000)?.aheadMilliseconds == -20)
        // Origins silent for a window are not reported.
        #expect(estimator.farthestAhead(at: 200_000) == nil)
        // Hostile stamps do not overflow.
        estimator.observe(origin: 4, newestStamp: .max, now: Int64.min, observedAt: 200_000)
        #expect(estimator.farthestAhead(at: 200_000)?.aheadMilliseconds == Int64.max)
    }

    @Test func theRateLimitLetsOneThroughPerIntervalAndCountsTheRest() {
        var limit = RateLimit(interval: 10_000)
        #expect(limit.allow(now: 0) == 0)
        #expect(limit.allow(now: 1) == nil)
        #expect(limit.allow(now: 9_999) == nil)
        #expect(limit.allow(now: 10_000) == 2)
        #expect(limit.allow(now: 10_001) == nil)
        #expect(limit.allow(now: 30_000) == 1)
    }
}
