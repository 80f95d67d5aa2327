import BrokerCore
import Foundation
import IPC
import Logging
import NATSClient
import Signals
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What the fetchers hand the main loop, in order.
enum FetcherEvent: Sendable {
    /// One fetch: one unit of the applier's credit, one frame to the applier. `gone`: ranges of the stream
    /// the stream confirmed gone just before these deliveries (the applier decides what that means).
    /// `held`: what the stream held when it confirmed them, for the log.
    case batch(from: ShardFetcher, gone: [ClosedRange<UInt64>], held: StreamState?, deliveries: [DataMessage.Delivery])
    /// The consumer skipped messages the stream still holds: it is replaced by one that delivers from
    /// `from`. `consumer`: its state just before (the evidence), when it could be read.
    case consumingAgain(stream: String, from: UInt64, why: String, consumer: ConsumerState?)
}

typealias DeliveryQueue = EventQueue<FetcherEvent>

/// The applier's credit: how many more fetched batches it will take. Fetchers wait on it, so the broker
/// never fetches more than the applier asked for. It belongs to the applier's connection and outlives
/// the fetchers, which give back what they took and could not fill when they stop.
final class Credit: @unchecked Sendable {
    // `units` is guarded by `condition`.
    private let condition = NSCondition()
    private var units = 0

    func grant(_ count: UInt32) {
        condition.lock()
        units += Int(count)
        condition.broadcast()
        condition.unlock()
    }

    /// Takes one unit, waiting as long as it takes; false once `stopped` says so (checked whenever the
    /// waiters are woken, see `wakeWaiters`).
    func take(unless stopped: () -> Bool) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while units == 0 && !stopped() { condition.wait() }
        guard !stopped() else { return false }
        units -= 1
        return true
    }

    /// Wakes every waiting fetcher to check whether it was stopped.
    func wakeWaiters() {
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }
}

/// One thread per shard: fetches from the shard's pull consumer while the applier has credit, checks every
/// batch for holes (`DeliveryContinuity`: a jump is asked of the stream, and a consumer that skipped
/// messages the stream still holds is replaced by one starting at the first of them), and queues what it
/// got for the main loop. Idle, a thread sleeps on the credit (without a timeout: `stop` wakes it) or in
/// one long poll of `longPollMilliseconds`, which ends the moment a message arrives; every
/// `idleCheckSeconds` of empty polls it asks the consumer what it counts as delivered.
final class ShardFetcher: Sendable {
    /// How long one pull request waits at the server when nothing comes: one request a second per shard
    /// when idle. (A first write after idle that took exactly the poll's length, 5 s then, came from
    /// abandoned pull requests; see `PullConsumer.fetch`.)
    static let longPollMilliseconds: Int64 = 1_000
    /// Idle, how often the consumer is asked whether it handed out messages this fetcher never received.
    static let idleCheckSeconds = 2.0

    let stream: String
    private let names: ConsumerNames
    private let connection: NATSConnection
    private let logger: Logger
    /// The consumer in use and its name (fresh at every creation, see `ConsumerNames`).
    private let consumer: Mutex<(name: String, pull: PullConsumer)>
    private let after: UInt64
    private let credit: Credit
    private let stopped = Atomic<Bool>(false)
    private let failures = Mutex<String?>(nil)

    /// The identity of the stream the consumer was created on (JetStream's creation time).
    let created: UInt64
    /// A newer identity already reported to the applier (0: none).
    let reportedIdentity = Atomic<UInt64>(0)

    /// Creates a consumer under a fresh name of `names` to deliver from `after + 1`, then deletes this
    /// node's other consumers of the shard (a previous incarnation's, or an older version's fixed name).
    init(connection: NATSConnection, stream: String, names: ConsumerNames, after: UInt64, credit: Credit, created: UInt64, logger: Logger) throws(NATSError) {
        self.connection = connection
        self.stream = stream
        self.names = names
        self.logger = logger
        self.after = after
        self.credit = credit
        self.created = created
        let existing: [String]?
        do {
            existing = try connection.consumerNames(stream: stream)
        } catch {
            existing = nil
            logger.debug(
                "cannot list the shard stream's consumers to delete this node's leftovers; tried again at the next start",
                metadata: ["stream": "\(stream)", "error": "\(error)"])
        }
        let name = Self.freshName(names, avoiding: Set(existing ?? []))
        consumer = Mutex((name, try PullConsumer(connection: connection, stream: stream, durable: name, afterSequence: after)))
        for leftover in names.leftovers(among: existing ?? [], keeping: name) { deleteConsumer(leftover, why: "left over from an earlier start") }
    }

    /// A name of the node's pool not in `avoiding` (every name in use: any, the create then fails and is retried).
    private static func freshName(_ names: ConsumerNames, avoiding: Set<String>) -> String {
        let random = UInt64.random(in: 0...UInt64.max)
        return names.fresh(avoiding: avoiding, random: random) ?? names.name(token: ConsumerNames.token(random % ConsumerNames.poolSize))
    }

    /// Best effort: a consumer left behind costs the servers a little and is deleted at the next start.
    private func deleteConsumer(_ name: String, why: String) {
        do {
            try connection.deleteConsumer(stream: stream, name: name)
            logger.debug("deleted a consumer of this node", metadata: ["stream": "\(stream)", "consumer": "\(name)", "why": "\(why)"])
        } catch {
            logger.debug(
                "cannot delete a consumer of this node; tried again at the next start",
                metadata: ["stream": "\(stream)", "consumer": "\(name)", "why": "\(why)", "error": "\(error)"])
        }
    }

    /// The name of the consumer in use.
    private var consumerName: String { consumer.withLock { $0.name } }

    /// JetStream may acknowledge everything through `sequence` (AckAll): the applier committed all of it.
    func acknowledge(through sequence: UInt64) {
        let current = consumer.withLock { $0.pull }
        current.acknowledge(through: sequence)
    }

    /// Each fetch is at most `DataMessage.maximumDeliveriesPerMessage` messages of
    /// `DataMessage.maximumDeliveryBytes` in all, so what it got always fits one IPC frame.
    func start(queue: DeliveryQueue) {
        let thread = Thread { [self] in
            var state = LoopState(continuity: DeliveryContinuity(after: after), idleSince: monotonicSeconds())
            while credit.take(unless: { isStopped }) {
                var delivered = false
                while !delivered && !isStopped {
                    do {
                        delivered = try fetchOnce(&state, queue: queue)
                    } catch {
                        failures.withLock { $0 = "\(error)" }
                        replaceIfVanished(after: error as? NATSError, &state, queue: queue)
                        Thread.sleep(forTimeInterval: 0.5)
                    }
                }
                if !delivered { credit.grant(1) }
            }
        }
        thread.name = "fetch " + stream
        thread.start()
    }

    /// The fetcher thread's own state.
    private struct LoopState {
        var continuity: DeliveryContinuity
        /// Replace the consumer with one that delivers after this sequence before the next fetch.
        var replaceAfter: UInt64?
        /// The last delivery or idle check.
        var idleSince: Double
    }

    /// One fetch, checked; true when a batch was queued for the applier.
    private func fetchOnce(_ state: inout LoopState, queue: DeliveryQueue) throws(NATSError) -> Bool {
        if let sequence = state.replaceAfter {
            try replaceConsumer(after: sequence)
            state.replaceAfter = nil
        }
        let messages = try consumer.withLock { $0.pull }.fetch(
            maximum: DataMessage.maximumDeliveriesPerMessage, maximumBytes: DataMessage.maximumDeliveryBytes,
            waitMilliseconds: Self.longPollMilliseconds)
        // A fetcher stopped during its long poll hands nothing on: a newer fetcher may serve the applier by
        // now, and these messages are delivered again from its cursor.
        guard !isStopped else { return false }
        guard !messages.isEmpty else {
            try checkIdle(&state, queue: queue)
            return false
        }
        state.idleSince = monotonicSeconds()
        switch try settle(messages, &state.continuity) {
        case .handOn(let gone):
            let held = gone.isEmpty ? nil : try? connection.streamState(stream)
            queue.push(
                .batch(
                    from: self, gone: gone, held: held,
                    deliveries: messages.map {
                        var delivery = DataMessage.Delivery(
                            stream: stream, sequence: $0.sequence, subject: $0.subject, payload: $0.payload, timestamp: $0.timestamp)
                        delivery.republishedFrom = $0.republishedFrom
                        delivery.messageID = $0.messageID
                        return delivery
                    }))
            return true
        case .consumeAgain(let sequence):
            let consumerState = try? connection.consumerState(stream: stream, consumer: consumerName)
            queue.push(
                .consumingAgain(stream: stream, from: sequence + 1, why: "the consumer skipped messages the stream still holds", consumer: consumerState))
            state.replaceAfter = sequence
            return false
        case .ask:
            return false  // not reached: `settle` asks until the stream answered
        }
    }

    /// After an empty long poll, every `idleCheckSeconds`: whether the consumer counts as delivered messages
    /// this fetcher never received.
    private func checkIdle(_ state: inout LoopState, queue: DeliveryQueue) throws(NATSError) {
        guard monotonicSeconds() - state.idleSince >= Self.idleCheckSeconds else { return }
        state.idleSince = monotonicSeconds()
        let consumerState = try connection.consumerState(stream: stream, consumer: consumerName)
        if case .consumeAgain(let sequence) = state.continuity.idle(consumerDelivered: consumerState.deliveredStreamSequence) {
            queue.push(
                .consumingAgain(
                    stream: stream, from: sequence + 1, why: "the consumer counts messages as delivered that never arrived", consumer: consumerState))
            state.replaceAfter = sequence
        }
    }

    /// JetStream's error code for a consumer that does not exist.
    static let consumerNotFoundCode = 10014

    /// After a failed fetch or check: when the consumer in use no longer exists (someone deleted it, or it
    /// was lost with its servers), it is replaced by one that delivers from the first message not handed
    /// on yet, at the next fetch. (It used to fail "consumer info … Not Found" forever, the node silently
    /// receiving nothing.) A fetch that failed without saying why asks the consumer's info to know.
    private func replaceIfVanished(after error: NATSError?, _ state: inout LoopState, queue: DeliveryQueue) {
        guard state.replaceAfter == nil else { return }
        let code = error?.jetStreamCode ?? 0
        var vanished = code == Self.consumerNotFoundCode
        if !vanished && code == 0 {
            do {
                _ = try connection.consumerState(stream: stream, consumer: consumerName)
            } catch {
                vanished = error.jetStreamCode == Self.consumerNotFoundCode
            }
        }
        guard vanished, !isStopped else { return }
        let after = state.continuity.next &- 1
        queue.push(.consumingAgain(stream: stream, from: after &+ 1, why: "the consumer no longer exists (deleted, or lost with its servers)", consumer: nil))
        state.replaceAfter = after
    }

    /// Checks one fetched batch, asking the stream about every jump: `handOn` or `consumeAgain`. An error
    /// drops the batch; the hole it leaves is asked about at the next fetch.
    private func settle(_ messages: [PullConsumer.Message], _ continuity: inout DeliveryContinuity) throws(NATSError) -> DeliveryContinuity.Step {
        var step = continuity.received(messages.map(\.sequence))
        while case .ask(let from) = step {
            step = continuity.streamHolds(lowest: try connection.lowestSequence(in: stream, atOrAfter: from))
        }
        return step
    }

    /// A new consumer, under a fresh name, that delivers from `after + 1`; then the previous one is deleted.
    private func replaceConsumer(after sequence: UInt64) throws(NATSError) {
        let name = Self.freshName(names, avoiding: [consumerName])
        let replacement = try PullConsumer(connection: connection, stream: stream, durable: name, afterSequence: sequence)
        let previous = consumer.withLock { current in
            defer { current = (name, replacement) }
            return current.name
        }
        deleteConsumer(previous, why: "replaced")
    }

    /// Ends the thread: at once when it waits for credit, else after its current fetch.
    func stop() {
        stopped.store(true, ordering: .relaxed)
        credit.wakeWaiters()
    }

    var isStopped: Bool { stopped.load(ordering: .relaxed) }

    /// The last fetch error since asked, if any.
    func takeFailure() -> String? {
        failures.withLock { taken in
            defer { taken = nil }; return taken
        }
    }
}
