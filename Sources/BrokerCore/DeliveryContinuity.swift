/// One shard consumer's deliveries checked for holes, with no I/O: a jump in stream sequences is a
/// question put to the stream, never a verdict on its own.
///
/// Why a consumer skips: a fetch is a pull request the consumer's leader answers by sending messages to the
/// client, counting them as delivered (replicated to the other consumer replicas) and waiting `AckWait` for
/// their acknowledgement. When the server that carried them dies (the consumer leader itself, or the server
/// the client is connected to), the messages never arrive, but the consumer — under a new leader — counts
/// them delivered and serves the next fetch from after them. Stream sequences have no holes, so the broker
/// sees a jump while the stream still holds every message (issue 14).
///
/// What this decides:
/// - A batch in order (redeliveries of earlier messages included) is handed on.
/// - A jump (`missing` before the delivered `sequence`) is a question: the glue asks the stream for the
///   lowest sequence it holds at or after the first missing one (`$JS.API.STREAM.MSG.GET` with
///   `next_by_subj`, answered by the stream leader). If it is below `sequence`, the consumer skipped messages
///   the stream still has: drop the batch and consume again (a new consumer) from the first message not
///   handed on yet.
///   Otherwise the missing range is gone from the stream (trimmed by `max_entries`, deleted): it is handed on
///   with the batch as confirmed gone, and the applier decides (restore, or say it is lost).
/// - Idle: when a long poll brought nothing but the consumer says it delivered `next` or later, it handed
///   out messages we never received (the tail of a burst lost in a failover, which no later message would
///   reveal as a jump before `AckWait`). Seen at two idle checks in a row (a message can still be on its
///   way at the first), the broker consumes again from `next`.
public struct DeliveryContinuity: Equatable, Sendable {
    public enum Step: Equatable, Sendable {
        /// Hand the batch on, after telling the applier that these ranges are gone from the stream.
        case handOn(gone: [ClosedRange<UInt64>])
        /// Ask the stream for the lowest sequence it holds at or after `from`; answer with `streamHolds`.
        case ask(from: UInt64)
        /// Drop the batch; replace the consumer with one that delivers from `after + 1`.
        case consumeAgain(after: UInt64)
    }

    /// The next sequence the applier needs from this consumer.
    public private(set) var next: UInt64
    private var batch: [UInt64] = []
    private var index = 0
    /// Where the batch is checked up to: the sequence expected at `index`.
    private var expected: UInt64 = 0
    private var gone: [ClosedRange<UInt64>] = []
    /// `next` when an idle check last found the consumer ahead of it.
    private var idleSuspect: UInt64?

    /// A consumer that delivers from `after + 1`.
    public init(after: UInt64) { next = after &+ 1 }

    /// A fetched batch, in the order the consumer delivered it.
    public mutating func received(_ sequences: [UInt64]) -> Step {
        batch = sequences
        index = 0
        expected = next
        gone = []
        return advance()
    }

    /// The stream's answer to `ask(from:)`: the lowest sequence it holds at or after `from`, nil when none.
    public mutating func streamHolds(lowest: UInt64?) -> Step {
        guard index < batch.count, batch[index] > expected else { return advance() }
        let delivered = batch[index]
        if let lowest, lowest < delivered {
            // The consumer skipped messages the stream still holds.
            batch = []
            return .consumeAgain(after: next - 1)
        }
        gone.append(expected...delivered - 1)
        expected = delivered
        return advance()
    }

    /// A long poll came back empty; `consumerDelivered` is the last stream sequence the consumer counts as
    /// delivered. Returns `consumeAgain` when it was ahead of `next` at this check and the one before.
    public mutating func idle(consumerDelivered: UInt64) -> Step? {
        guard consumerDelivered >= next else {
            idleSuspect = nil
            return nil
        }
        guard idleSuspect == next else {
            idleSuspect = next
            return nil
        }
        idleSuspect = nil
        return .consumeAgain(after: next - 1)
    }

    private mutating func advance() -> Step {
        while index < batch.count {
            let sequence = batch[index]
            if sequence > expected { return .ask(from: expected) }
            if sequence == expected { expected += 1 }
            index += 1
        }
        next = max(next, expected)
        batch = []
        idleSuspect = nil
        return .handOn(gone: gone)
    }
}
