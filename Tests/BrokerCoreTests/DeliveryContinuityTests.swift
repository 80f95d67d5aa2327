import Testing

@testable import BrokerCore

/// A jump in delivered sequences is asked of the stream: consumed again when the stream still holds what
/// was skipped, handed on as gone only when it does not.
@Suite struct DeliveryContinuityTests {
    @Test func batchesInOrderAreHandedOnAndMoveNext() {
        var continuity = DeliveryContinuity(after: 5)
        #expect(continuity.received([6, 7, 8]) == .handOn(gone: []))
        #expect(continuity.next == 9)
        // Redeliveries of what came before are handed on too (the applier acknowledges them).
        #expect(continuity.received([4, 8, 9]) == .handOn(gone: []))
        #expect(continuity.next == 10)
    }

    /// The failover case: the consumer counted 7 and 8 as delivered to a request whose server died; the
    /// stream still holds them.
    @Test func aSkipTheStreamStillHoldsIsConsumedAgainFromTheFirstMessageNotHandedOn() {
        var continuity = DeliveryContinuity(after: 5)
        #expect(continuity.received([6, 9, 10]) == .ask(from: 7))
        // The whole batch is dropped, 6 included: the new consumer delivers from 6.
        #expect(continuity.streamHolds(lowest: 7) == .consumeAgain(after: 5))
        #expect(continuity.next == 6)
        #expect(continuity.received([6, 7, 8, 9, 10]) == .handOn(gone: []))
        #expect(continuity.next == 11)
    }

    /// However often the consumer skips, the answer depends on the stream, not on a count of attempts.
    @Test func repeatedSkipsAreConsumedAgainEveryTime() {
        var continuity = DeliveryContinuity(after: 0)
        for _ in 0..<5 {
            #expect(continuity.received([3]) == .ask(from: 1))
            #expect(continuity.streamHolds(lowest: 1) == .consumeAgain(after: 0))
        }
        #expect(continuity.received([1, 2, 3]) == .handOn(gone: []))
    }

    @Test func aTrimmedRangeIsHandedOnAsGone() {
        var continuity = DeliveryContinuity(after: 5)
        #expect(continuity.received([50, 51]) == .ask(from: 6))
        // The stream's first message is 50: 6…49 are gone.
        #expect(continuity.streamHolds(lowest: 50) == .handOn(gone: [6...49]))
        #expect(continuity.next == 52)
    }

    /// Trimmed below 20, but 20…49 were skipped by the consumer: consume again; the new consumer starts
    /// at 20 (what the stream holds), and that jump is gone.
    @Test func aPartlyTrimmedJumpIsConsumedAgainThenHandedOnAsGone() {
        var continuity = DeliveryContinuity(after: 5)
        #expect(continuity.received([50]) == .ask(from: 6))
        #expect(continuity.streamHolds(lowest: 20) == .consumeAgain(after: 5))
        #expect(continuity.received([20, 21]) == .ask(from: 6))
        #expect(continuity.streamHolds(lowest: 20) == .handOn(gone: [6...19]))
        #expect(continuity.next == 22)
    }

    /// Deleted messages inside the stream (no trim) are gone too, and several holes in one batch are each asked.
    @Test func severalHolesInOneBatchAreEachAsked() {
        var continuity = DeliveryContinuity(after: 0)
        #expect(continuity.received([1, 3, 4, 7]) == .ask(from: 2))
        #expect(continuity.streamHolds(lowest: 3) == .ask(from: 5))
        #expect(continuity.streamHolds(lowest: nil) == .handOn(gone: [2...2, 5...6]))
        #expect(continuity.next == 8)
    }

    /// The tail of a burst lost in a failover shows no jump: the consumer says it delivered what never
    /// arrived. Seen twice in a row it is consumed again; once, or once caught up, it is not.
    @Test func idleChecksCatchMessagesHandedOutButNeverReceived() {
        var continuity = DeliveryContinuity(after: 5)
        #expect(continuity.idle(consumerDelivered: 5) == nil)
        #expect(continuity.idle(consumerDelivered: 7) == nil)
        #expect(continuity.idle(consumerDelivered: 5) == nil)
        #expect(continuity.idle(consumerDelivered: 7) == nil)
        #expect(continuity.idle(consumerDelivered: 7) == .consumeAgain(after: 5))
        // A delivery in between clears the suspicion.
        #expect(continuity.idle(consumerDelivered: 7) == nil)
        #expect(continuity.received([6, 7]) == .handOn(gone: []))
        #expect(continuity.idle(consumerDelivered: 7) == nil)
        #expect(continuity.idle(consumerDelivered: 7) == nil)
    }
}
