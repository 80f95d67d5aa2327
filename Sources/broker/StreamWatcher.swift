import Foundation
import NATSClient
import Synchronization

/// Reads each shard stream's last sequence every 2 s on its own thread, for /metrics and `-status`
/// (the stream's head against this node's cursor is how far behind the node is), and its identity (its
/// creation time: a stream deleted and created again has another one). A JetStream request can take seconds
/// when the cluster is unwell: here it never delays the broker's loop or its heartbeats.
final class StreamWatcher: Sendable {
    static let interval = 2.0

    private let lastSequences = Mutex<[String: UInt64]>([:])
    private let creationTimes = Mutex<[String: UInt64]>([:])
    private let stopped = Atomic<Bool>(false)
    private let connection: NATSConnection
    private let streams: [String]

    /// Starts the thread; it ends after `stop`, at its next wake-up.
    init(connection: NATSConnection, streams: [String]) {
        self.connection = connection
        self.streams = streams
        let thread = Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                refresh()
                Thread.sleep(forTimeInterval: Self.interval)
            }
        }
        thread.name = "stream watcher"
        thread.start()
    }

    /// The last sequence of every stream read so far.
    var current: [String: UInt64] { lastSequences.withLock { $0 } }

    /// The identity (creation time, ns since 1970) of every stream read so far.
    var identities: [String: UInt64] { creationTimes.withLock { $0 } }

    func stop() { stopped.store(true, ordering: .relaxed) }

    /// Reads every stream's head now (also called by the broker's loop when `-status` asks: one JetStream
    /// request per shard, each bounded by the connection's request timeout).
    func refresh() {
        for stream in streams where connection.isConnected {
            if let state = try? connection.streamState(stream) {
                lastSequences.withLock { $0[stream] = state.lastSequence }
                creationTimes.withLock { $0[stream] = state.created }
            }
        }
    }
}
