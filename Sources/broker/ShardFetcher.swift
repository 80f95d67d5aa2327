import Dispatch
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
/// never fetches more than the applier asked for.
final class Credit: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)

    func grant(_ count: UInt32) { for _ in 0..<count { semaphore.signal() } }

    /// Takes one unit, waiting at most `seconds`.
    func take(waiting seconds: Double) -> Bool { semaphore.wait(timeout: .now() + seconds) == .success }
}

/// One thread per shard: fetches from the shard's pull consumer while the applier has credit, and queues
/// what it got for the main loop.
final class ShardFetcher: Sendable {
    let stream: String
    let consumer: PullConsumer
    private let stopped = Atomic<Bool>(false)
    private let failures = Mutex<String?>(nil)

    init(stream: String, consumer: PullConsumer) {
        self.stream = stream
        self.consumer = consumer
    }

    func start(credit: Credit, queue: DeliveryQueue, batchSize: Int) {
        let thread = Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                guard credit.take(waiting: 0.2) else { continue }
                var delivered = false
                while !delivered && !stopped.load(ordering: .relaxed) {
                    do {
                        let messages = try consumer.fetch(maximum: batchSize, waitMilliseconds: 1_000)
                        guard !messages.isEmpty else { continue }
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

    func stop() { stopped.store(true, ordering: .relaxed) }

    /// The last fetch error since asked, if any.
    func takeFailure() -> String? { failures.withLock { taken in defer { taken = nil }; return taken } }
}
