import Foundation
import IPC
import NATSClient
import Signals
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Fetched batches waiting for the main loop. One batch is one unit of the applier's credit and goes to
/// the applier as one frame, so credit taken and credit returned always match.
typealias DeliveryQueue = EventQueue<[DataMessage.Delivery]>

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

/// One thread per shard: fetches from the shard's pull consumer while the applier has credit, and queues
/// what it got for the main loop. Idle, a thread sleeps on the credit (without a timeout: `stop` wakes it)
/// or in one long poll of `longPollMilliseconds`, which ends the moment a message arrives.
final class ShardFetcher: Sendable {
    /// How long one pull request waits at the server when nothing comes: one request a second per shard
    /// when idle. (A first write after idle that took exactly the poll's length, 5 s then, came from
    /// abandoned pull requests; see `PullConsumer.fetch`.)
    static let longPollMilliseconds: Int64 = 1_000

    let stream: String
    let consumer: PullConsumer
    private let credit: Credit
    private let stopped = Atomic<Bool>(false)
    private let failures = Mutex<String?>(nil)

    init(stream: String, consumer: PullConsumer, credit: Credit) {
        self.stream = stream
        self.consumer = consumer
        self.credit = credit
    }

    /// Each fetch is at most `DataMessage.maximumDeliveriesPerMessage` messages of
    /// `DataMessage.maximumDeliveryBytes` in all, so what it got always fits one IPC frame.
    func start(queue: DeliveryQueue) {
        let thread = Thread { [self] in
            while credit.take(unless: { stopped.load(ordering: .relaxed) }) {
                var delivered = false
                while !delivered && !stopped.load(ordering: .relaxed) {
                    do {
                        let messages = try consumer.fetch(maximum: DataMessage.maximumDeliveriesPerMessage, maximumBytes: DataMessage.maximumDeliveryBytes,
                                                          waitMilliseconds: Self.longPollMilliseconds)
                        // A fetcher stopped during its long poll hands nothing on: a newer fetcher may serve
                        // the applier by now, and these messages are delivered again from its cursor.
                        guard !messages.isEmpty, !stopped.load(ordering: .relaxed) else { continue }
                        queue.push(messages.map { DataMessage.Delivery(stream: stream, sequence: $0.sequence, payload: $0.payload) })
                        delivered = true
                    } catch {
                        failures.withLock { $0 = "\(error)" }
                        Thread.sleep(forTimeInterval: 0.5)
                    }
                }
                if !delivered { credit.grant(1) }
            }
        }
        thread.name = "fetch " + stream
        thread.start()
    }

    /// Ends the thread: at once when it waits for credit, else after its current fetch.
    func stop() {
        stopped.store(true, ordering: .relaxed)
        credit.wakeWaiters()
    }

    /// The last fetch error since asked, if any.
    func takeFailure() -> String? { failures.withLock { taken in defer { taken = nil }; return taken } }
}
