import Foundation
import NATSClient
import Synchronization

/// Reads each shard stream's last sequence every 2 s on its own thread, for /metrics and `-status`
/// (the stream's head against this node's cursor is how far behind the node is). A JetStream request can
/// take seconds when the cluster is unwell: here it never delays the broker's loop or its heartbeats.
final class StreamWatcher: Sendable {
    static let interval = 2.0

    private let lastSequences = Mutex<[String: UInt64]>([:])
    private let stopped = Atomic<Bool>(false)

    /// Starts the thread; it ends after `stop`, at its next wake-up.
    init(connection: NATSConnection, streams: [String]) {
        let thread = Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                for stream in streams where connection.isConnected {
                    if let state = try? connection.streamState(stream) {
                        lastSequences.withLock { $0[stream] = state.lastSequence }
                    }
                }
                Thread.sleep(forTimeInterval: Self.interval)
            }
        }
        thread.name = "stream watcher"
        thread.start()
    }

    /// The last sequence of every stream read so far.
    var current: [String: UInt64] { lastSequences.withLock { $0 } }

    func stop() { stopped.store(true, ordering: .relaxed) }
}
