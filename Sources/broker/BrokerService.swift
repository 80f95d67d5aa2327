import HarmonyConfig
import IPC
import Logging
import NATSClient
import Signals
import WorkerRuntime

#if canImport(Glibc)
import Glibc
#endif

/// The broker's work, driven by the worker loop on the main thread. Connects to NATS (bounded attempts at
/// first, then libnats reconnects forever), makes sure the shard streams exist, and serves the data socket:
/// publishes from the capturer (confirmed only once JetStream acknowledged them), deliveries to the applier
/// (only against its credit, acknowledged to JetStream only once it committed them).
final class BrokerService: WorkerLoopHandler {
    private let runtime: WorkerRuntime
    private let config: Configuration
    private let logger: Logger
    private var settings: ConnectionSettings
    private let redactedURLs: String
    private let acks = PublishAcks()

    private var connection: NATSConnection?
    private var attempts = 0
    private var nextAttempt = monotonicSeconds()
    private var wasConnected = false
    private var streamsReady = false
    private var lastProblem = ""

    private let listener: Int32
    private var peers: [Int32: Peer] = [:]
    private var capturer: Int32?
    private var applier: Int32?
    /// Nats-Msg-Id → the capturer's batch ids waiting for that acknowledgement.
    private var pendingPublishes: [String: [UInt64]] = [:]

    private let deliveries = DeliveryQueue()
    private var credit = Credit()
    private var fetchers: [String: ShardFetcher] = [:]
    private var wantedSubscription: [DataMessage.Position]?

    private var published: Int64 = 0
    private var publishFailures: Int64 = 0
    private var delivered: Int64 = 0

    private final class Peer {
        let connection: FrameConnection
        var role: DataMessage.Role?
        init(_ connection: FrameConnection) { self.connection = connection }
    }

    init(runtime: WorkerRuntime) throws {
        self.runtime = runtime
        config = runtime.configuration
        logger = runtime.logger
        settings = try ConnectionSettings(configuration: config, name: config.nodeName, heartbeatTimeout: config.workers["broker", default: WorkerSettings()].heartbeatTimeout)
        settings.publishAcks = acks
        redactedURLs = config.natsClientURLs.map(URLRedaction.redact).joined(separator: ", ")
        listener = try UnixSocket.listen(path: runtime.runDirectory + "/" + ControlChannel.dataSocketName)
        try UnixSocket.setNonBlocking(listener)
    }

    func drain() {
        fetchers.values.forEach { $0.stop() }
        close(listener)
    }

    // MARK: WorkerLoopHandler

    var descriptors: [pollfd] {
        var list = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
                    pollfd(fd: acks.wakeDescriptor, events: Int16(POLLIN), revents: 0),
                    pollfd(fd: deliveries.wakeDescriptor, events: Int16(POLLIN), revents: 0)]
        for (fd, peer) in peers {
            list.append(pollfd(fd: fd, events: Int16(POLLIN) | (peer.connection.hasPendingOutput ? Int16(POLLOUT) : 0), revents: 0))
        }
        return list
    }

    var nextDeadline: Double? { connection == nil ? nextAttempt : (streamsReady ? nil : monotonicSeconds() + 0.5) }

    var counters: [ControlMessage.Counter] {
        [.init("nats_connected", connection?.isConnected == true ? 1 : 0), .init("published_batches", published),
         .init("publish_failures", publishFailures), .init("delivered_messages", delivered)]
    }

    func handle(readable: [pollfd], now: Double) throws {
        for descriptor in readable {
            switch descriptor.fd {
            case listener: acceptPeers()
            case acks.wakeDescriptor: forwardAcknowledgements()
            case deliveries.wakeDescriptor: forwardDeliveries()
            default: servicePeer(descriptor.fd)
            }
        }
    }

    func tick(now: Double) throws {
        if connection == nil { try connectIfDue() }
        guard let connection else { return }
        let connected = connection.isConnected
        if connected != wasConnected {
            wasConnected = connected
            if connected {
                logger.info("connected to NATS at \(redactedURLs)")
            } else {
                logger.warning("disconnected from NATS; reconnecting every \(config.nats.reconnectWaitSeconds) s; publishes wait")
                try? runtime.reportStatus("NATS disconnected, reconnecting")
            }
        }
        if connected && !streamsReady { prepareStreams(connection) }
        for fetcher in fetchers.values {
            if let failure = fetcher.takeFailure() { logger.warning("consuming \(fetcher.stream): \(failure)") }
        }
    }

    // MARK: NATS

    private func connectIfDue() throws {
        guard monotonicSeconds() >= nextAttempt else { return }
        attempts += 1
        let maximum = max(1, config.nats.connectRetries)
        do {
            connection = try NATSConnection.connect(settings)
        } catch {
            logger.warning("connecting to NATS at \(redactedURLs), attempt \(attempts) of \(maximum): \(error)")
            guard attempts < maximum else {
                throw WorkerExit.failed("could not connect to NATS at \(redactedURLs) in \(maximum) attempts (nats.connect_retries): \(error)")
            }
            try? runtime.reportStatus("connecting to NATS: \(error)")
            nextAttempt = monotonicSeconds() + Double(max(1, config.nats.reconnectWaitSeconds))
        }
    }

    /// Streams `<stream_prefix>-<n>` on subjects `<subject_prefix>-<n>`, n = 1…shards. HarmonyLite renamed
    /// the stream with `-c-` when compressing; our messages say whether they are compressed, so one name serves.
    private func prepareStreams(_ connection: NATSConnection) {
        do {
            for shard in 1...config.replicationLog.shards {
                _ = try connection.ensureStream(streamSpecification(shard), updateExisting: config.replicationLog.updateExisting)
            }
            streamsReady = true
            try runtime.reportReady("JetStream answering at \(redactedURLs); \(config.replicationLog.shards) shard stream(s) ready")
            if let cursor = wantedSubscription { startConsumers(after: cursor) }
        } catch {
            if "\(error)" != lastProblem {
                lastProblem = "\(error)"
                logger.warning("waiting for JetStream: \(error)")
                try? runtime.reportStatus("waiting for JetStream: \(error)")
            }
        }
    }

    private func streamSpecification(_ shard: UInt64) -> StreamSpecification {
        StreamSpecification(
            name: "\(config.nats.streamPrefix)-\(shard)",
            subject: "\(config.nats.subjectPrefix)-\(shard)",
            replicas: config.replicationLog.effectiveReplicas,
            maxMessages: config.replicationLog.maxEntries
        )
    }

    private func startConsumers(after cursor: [DataMessage.Position]) {
        guard let connection else { return }
        fetchers.values.forEach { $0.stop() }
        fetchers.removeAll()
        credit = Credit()
        let positions = Dictionary(cursor.map { ($0.stream, $0.sequence) }, uniquingKeysWith: max)
        do {
            for shard in 1...config.replicationLog.shards {
                let spec = streamSpecification(shard)
                let after = positions[spec.name] ?? 0
                let state = try connection.streamState(spec.name)
                if state.messages > 0 && after + 1 < state.firstSequence {
                    logger.error("\(spec.name) no longer holds messages \(after + 1)…\(state.firstSequence - 1) this node has not applied: it needs a snapshot restore (messages are kept up to replication_log.max_entries)")
                }
                let consumer = try PullConsumer(connection: connection, stream: spec.name, subject: spec.subject, durable: "\(config.nodeName)-\(shard)", afterSequence: after)
                let fetcher = ShardFetcher(stream: spec.name, consumer: consumer)
                // The capturer keeps messages under 256 KiB: 32 of them stay well inside one IPC frame.
                fetcher.start(credit: credit, queue: deliveries, batchSize: 32)
                fetchers[spec.name] = fetcher
            }
            wantedSubscription = nil
            logger.info("consuming \(fetchers.count) shard stream(s) for the applier")
        } catch {
            logger.warning("cannot create consumers yet: \(error)")
            wantedSubscription = cursor
        }
    }

    // MARK: data socket

    private func acceptPeers() {
        while let fd = try? UnixSocket.accept(listener) {
            guard let peer = try? UnixSocket.peerCredentials(fd), peer.uid == getuid(), (try? UnixSocket.setNonBlocking(fd)) != nil else {
                close(fd)
                continue
            }
            peers[fd] = Peer(FrameConnection(fd: fd))
        }
    }

    private func servicePeer(_ fd: Int32) {
        guard let peer = peers[fd] else { return }
        do {
            try peer.connection.flush()
            for frame in try peer.connection.readAvailable() { try handle(try DataMessage(frame: frame), from: peer, fd: fd) }
        } catch {
            if error.kind != .connectionClosed { logger.warning("data connection: \(error); closing it") }
            drop(fd)
        }
    }

    private func handle(_ message: DataMessage, from peer: Peer, fd: Int32) throws(IPCError) {
        switch (peer.role, message) {
        case (nil, .hello(let role)):
            peer.role = role
            if role == .capturer { capturer = fd } else { applier = fd }
        case (.capturer, .publish(let publish)):
            publishBatch(publish)
        case (.applier, .subscribe(let cursor)):
            if streamsReady { startConsumers(after: cursor) } else { wantedSubscription = cursor }
        case (.applier, .credit(let count)):
            credit.grant(count)
        case (.applier, .applied(let position)):
            fetchers[position.stream]?.consumer.acknowledge(through: position.sequence)
        default:
            throw IPCError(.handshakeFailed("unexpected \(message) from \(peer.role.map { "\($0)" } ?? "an unidentified peer")"))
        }
    }

    private func publishBatch(_ publish: DataMessage.Publish) {
        guard let connection, streamsReady else {
            reply(to: capturer, .publishFailed(batchID: publish.batchID, reason: "JetStream is not ready"))
            return
        }
        do {
            try connection.publishAsync(subject: "\(config.nats.subjectPrefix)-\(publish.shard)", payload: publish.payload, messageID: publish.messageID)
            pendingPublishes[publish.messageID, default: []].append(publish.batchID)
        } catch {
            publishFailures += 1
            reply(to: capturer, .publishFailed(batchID: publish.batchID, reason: "\(error)"))
        }
    }

    private func forwardAcknowledgements() {
        for result in acks.drain() {
            switch result {
            case .stored(let messageID, let stream, let sequence, _):
                for batch in pendingPublishes.removeValue(forKey: messageID) ?? [] {
                    published += 1
                    reply(to: capturer, .published(batchID: batch, stream: stream, sequence: sequence))
                }
            case .failed(let messageID, let reason):
                for batch in pendingPublishes.removeValue(forKey: messageID) ?? [] {
                    publishFailures += 1
                    reply(to: capturer, .publishFailed(batchID: batch, reason: reason))
                }
            }
        }
    }

    private func forwardDeliveries() {
        for batch in deliveries.drain() {
            delivered += Int64(batch.count)
            reply(to: applier, .deliver(batch))
        }
    }

    private func reply(to fd: Int32?, _ message: DataMessage) {
        guard let fd, let peer = peers[fd] else { return }
        peer.connection.enqueue(message.frame)
        do { try peer.connection.flush() } catch { drop(fd) }
    }

    private func drop(_ fd: Int32) {
        peers[fd]?.connection.close()
        peers[fd] = nil
        if capturer == fd { capturer = nil }
        if applier == fd {
            applier = nil
            fetchers.values.forEach { $0.stop() }
            fetchers.removeAll()
        }
    }
}
