import BrokerCore
import ChangeEvents
import HarmonyConfig
import IPC
import Logging
import Logs
import NATSClient
import NodeNATS
import Signals
import WorkerRuntime

#if canImport(Glibc)
import Glibc
#endif

/// The broker's work, driven by the worker loop on the main thread: thin I/O glue around two pure cores.
/// `JetStreamSchedule` decides when to connect to NATS (bounded attempts at first, then libnats
/// reconnects forever), check the shard streams and start the applier's consumers; `PublishCorrelation`
/// decides which of the capturer's batches each JetStream acknowledgement confirms. This carries out their
/// actions: NATS calls, the data socket, logs. Deliveries to the applier go only against its credit and are
/// acknowledged to JetStream only once it committed them.
final class BrokerService: WorkerLoopHandler {
    private let runtime: WorkerRuntime
    private let config: Configuration
    private let logger: Logger
    private var settings: ConnectionSettings
    private let redactedURLs: String
    private let acks = PublishAcks()

    private var connection: NATSConnection?
    private var schedule: JetStreamSchedule
    private var correlation = PublishCorrelation()

    private let listener: Int32
    private var peers: [Int32: Peer] = [:]
    private var capturer: Int32?
    private var applier: Int32?

    private let deliveries = DeliveryQueue()
    /// The connected applier's credit.
    private var credit = Credit()
    private var fetchers: [String: ShardFetcher] = [:]

    private var delivered: Int64 = 0
    private var streamWatcher: StreamWatcher?
    /// This node's id claim in the cluster: held before the streams are prepared (and any consumer touched).
    private lazy var nodeClaim = NodeClaimKeeper(config: config, logger: logger) { [runtime] in try? runtime.reportStatus($0) }

    private final class Peer {
        let connection: FrameConnection
        var role: DataMessage.Role?
        init(_ connection: FrameConnection) { self.connection = connection }
    }

    init(runtime: WorkerRuntime) throws {
        self.runtime = runtime
        config = runtime.configuration
        logger = runtime.logger
        settings = try ConnectionSettings(configuration: config, name: config.nodeName, heartbeatTimeout: config.settings(for: .broker).heartbeatTimeout)
        settings.publishAcks = acks
        redactedURLs = config.natsClientURLs.map(URLRedaction.redact).joined(separator: ", ")
        schedule = JetStreamSchedule(
            settings: .init(redactedURLs: redactedURLs, connectRetries: config.nats.connectRetries, reconnectWaitSeconds: config.nats.reconnectWaitSeconds),
            now: monotonicSeconds()
        )
        listener = try UnixSocket.listen(path: runtime.runDirectory + "/" + ControlChannel.dataSocketName)
        try UnixSocket.setNonBlocking(listener)
    }

    /// A stop the loop ended: the supervisor asked or a signal came (the node stops), or the supervisor is gone.
    func drain(reason: WorkerRuntime.StopReason) {
        finish(claim: reason == .supervisorGone ? .supervisorGone : .nodeStopping)
    }

    /// A stop on the broker's own failure (`WorkerExit`): the supervisor starts it again.
    func drain() { finish(claim: .brokerFailed) }

    private func finish(claim stop: NodeClaim.Stop) {
        streamWatcher?.stop()
        stopFetchers()
        nodeClaim.release(on: stop)
        close(listener)
    }

    // MARK: WorkerLoopHandler

    var descriptors: [pollfd] {
        var list = [
            pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
            pollfd(fd: acks.wakeDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: deliveries.wakeDescriptor, events: Int16(POLLIN), revents: 0),
        ]
        for (fd, peer) in peers {
            list.append(pollfd(fd: fd, events: Int16(POLLIN) | (peer.connection.hasPendingOutput ? Int16(POLLOUT) : 0), revents: 0))
        }
        return list
    }

    var nextDeadline: Double? { schedule.nextDeadline }

    /// `-status` asked: the stream heads are read now, not up to `StreamWatcher.interval` ago.
    func refreshReadings() { streamWatcher?.refresh() }

    var counters: [ControlMessage.Counter] {
        [
            .init(.natsConnected, connection?.isConnected == true ? 1 : 0), .init(.publishedBatches, correlation.confirmedBatches),
            .init(.publishFailures, correlation.failedBatches), .init(.deliveredMessages, delivered),
        ]
            + (streamWatcher?.current ?? [:]).sorted { $0.key < $1.key }.map { .init(.streamLastSequence, label: $0.key, Int64(clamping: $0.value)) }
    }

    func handle(readable: [pollfd], now: Double) throws {
        for descriptor in readable {
            switch descriptor.fd {
            case listener: acceptPeers()
            case acks.wakeDescriptor: forwardAcknowledgements()
            case deliveries.wakeDescriptor: forwardDeliveries()
            default: try servicePeer(descriptor.fd, now: now)
            }
        }
    }

    func tick(now: Double) throws {
        nodeClaim.renewIfDue(on: connection, now: now)
        try perform(schedule.tick(now: now, linkUp: connection?.isConnected == true), now: now)
        for fetcher in fetchers.values.sorted(by: { $0.stream < $1.stream }) {
            if let failure = fetcher.takeFailure() {
                logger.warning("consuming a shard stream failed", metadata: ["stream": "\(fetcher.stream)", "error": "\(failure)"])
            }
            checkIdentity(of: fetcher)
        }
    }

    // MARK: NATS

    private func perform(_ actions: [JetStreamSchedule.Action], now: Double) throws {
        for action in actions {
            switch action {
            case .connect:
                let connection: NATSConnection
                do {
                    connection = try NATSConnection.connect(settings)
                } catch {
                    // Connecting can block for seconds: the schedule spaces the next attempt from its end.
                    let failedAt = monotonicSeconds()
                    try perform(schedule.connectFailed(reason: "\(error)", now: failedAt), now: failedAt)
                    continue
                }
                self.connection = connection
                try perform(schedule.connected(now: now, linkUp: connection.isConnected), now: now)
            case .connectAttemptFailed(let attempt, let maximum, let reason, let retryIn):
                logger.warning(
                    "connecting to NATS failed",
                    metadata: ["urls": "\(redactedURLs)", "attempt": "\(attempt) of \(maximum)", "retry_in_s": "\(retryIn)", "error": "\(reason)"])
                try? runtime.reportStatus("connecting to NATS: \(reason)")
            case .giveUp(let reason):
                throw WorkerExit.failed(reason)
            case .announceLinkUp:
                let maxPayload = connection?.maxPayload ?? 0
                logger.info("connected to NATS", metadata: ["urls": "\(redactedURLs)", "max_payload": "\(maxPayload)"])
                if maxPayload < DataMessage.maximumPublishBytes {
                    logger.error(
                        "the NATS server's max_payload is below the capturer's largest messages: a message above it is refused and retried until the server's max_payload is raised",
                        metadata: ["max_payload": "\(maxPayload)", "needed": "\(DataMessage.maximumPublishBytes)"])
                }
            case .announceLinkDown:
                logger.warning("disconnected from NATS; reconnecting; publishes wait", metadata: ["reconnect_wait_s": "\(config.nats.reconnectWaitSeconds)"])
                try? runtime.reportStatus("NATS disconnected, reconnecting")
            case .prepareStreams:
                do {
                    guard let connection, try nodeClaim.holdClaim(on: connection, now: now) else {
                        try perform(schedule.streamsNotReady(reason: NodeClaimKeeper.pending, now: now), now: now)
                        continue
                    }
                    try prepareStreams()
                } catch let stop as WorkerExit {
                    throw stop
                } catch {
                    let failedAt = monotonicSeconds()
                    try perform(schedule.streamsNotReady(reason: "\(error)", now: failedAt), now: failedAt)
                    continue
                }
                if streamWatcher == nil, let connection {
                    streamWatcher = StreamWatcher(connection: connection, streams: (1...config.replicationLog.shards).map { streamSpecification($0).name })
                }
                try perform(schedule.streamsPrepared(), now: now)
            case .reportReady:
                try runtime.reportReady("JetStream answering at \(redactedURLs); \(config.replicationLog.shards) shard stream(s) ready")
            case .announceWaitingForJetStream(let reason),
                .announceStillWaitingForJetStream(let reason, _) where reason == NodeClaimKeeper.pending:
                continue  // the claim says its own wait
            case .announceWaitingForJetStream(let reason):
                logger.warning("waiting for JetStream", metadata: ["error": "\(reason)"])
                try? runtime.reportStatus("waiting for JetStream: \(reason)")
            case .announceStillWaitingForJetStream(let reason, let seconds):
                logger.warning("still waiting for JetStream", metadata: ["waited_s": "\(seconds)", "error": "\(reason)"])
                try? runtime.reportStatus("still waiting for JetStream (\(seconds) s): \(reason)")
            case .startConsumers(let cursor):
                do {
                    try startConsumers(after: cursor)
                    schedule.consumersStarted()
                    logger.info("consuming shard streams for the applier", metadata: ["streams": "\(fetchers.count)"])
                } catch {
                    stopFetchers()
                    let failedAt = monotonicSeconds()
                    try perform(schedule.consumersFailed(reason: "\(error)", now: failedAt), now: failedAt)
                }
            case .announceConsumersNotStarted(let reason, let retryIn):
                logger.warning("cannot create consumers yet", metadata: ["retry_in_s": "\(retryIn)", "error": "\(reason)"])
            }
        }
    }

    /// Streams `<stream_prefix>-<n>` on subjects `<subject_prefix>-<n>` (HarmonyLite's) and
    /// `<subject_prefix>-<n>.*` (each node's own, see `ChangeSubjects`), n = 1…shards. A stream that lacks
    /// the per-node subjects (created by an older version or by HarmonyLite) gets them whatever
    /// `update_existing` says: without them this node's publishes would find no stream. HarmonyLite renamed
    /// the stream with `-c-` when compressing; our messages say whether they are compressed, so one name serves.
    private func prepareStreams() throws {
        guard let connection else { return }
        for shard in 1...config.replicationLog.shards { try ensureStream(shard, on: connection) }
    }

    /// With the embedded server the stream is the administrator's to make and repair (the supervisor's
    /// set-up, `JetStreamSetup`): this node's user may not, and only waits for it to exist.
    private func ensureStream(_ shard: UInt64, on connection: NATSConnection) throws {
        let spec = streamSpecification(shard)
        // Upstream HarmonyLite's compressed stream binds this shard's subject: creating ours would only
        // fail on the overlap, again and again. Its name is ours to adopt, by a setting (all workers name
        // the streams alike).
        let upstreamName = "\(config.nats.streamPrefix)-c-\(shard)"
        if spec.name != upstreamName, (try? connection.streamState(spec.name)) == nil, (try? connection.streamState(upstreamName)) != nil {
            throw WorkerExit.failed(
                "stream \(upstreamName), upstream HarmonyLite's name when it compresses, holds this shard's subject: "
                    + "set replication_log.upstream_stream_names = true (with compress = true) to share it (docs/upgrading-from-harmonylite.md)")
        }
        if config.nats.isEmbedded {
            // The supervisor's set-up makes the streams (the node's user may not): wait for it.
            _ = try connection.streamState(spec.name)
            return
        }
        let ensured = try connection.ensureStream(spec, updateExisting: config.replicationLog.updateExisting)
        if !ensured.addedSubjects.isEmpty {
            logger.notice(
                "added the per-node subjects to an existing shard stream (publishers on its other subjects keep working)",
                metadata: ["stream": "\(spec.name)", "added": "\(ensured.addedSubjects.joined(separator: ", "))"])
        }
    }

    private func streamSpecification(_ shard: UInt64) -> StreamSpecification { .changeStream(config, shard: shard) }

    private func startConsumers(after cursor: [DataMessage.Position]) throws {
        guard let connection else { return }
        stopFetchers()
        let positions = Dictionary(cursor.map { ($0.stream, $0.sequence) }, uniquingKeysWith: max)
        for shard in 1...config.replicationLog.shards {
            let spec = streamSpecification(shard)
            let after = positions[spec.name] ?? 0
            let state = try connection.streamState(spec.name)
            if case .missing(let missing) = StreamPosition.check(position: after, firstSequence: state.messages > 0 ? state.firstSequence : nil) {
                logger.error(
                    "a shard stream no longer holds messages this node has not applied: it needs a snapshot restore (messages are kept up to replication_log.max_entries)",
                    metadata: ["stream": "\(spec.name)", "missing": "\(missing.lowerBound)…\(missing.upperBound)"])
            }
            // Before any delivery of this consumer: the applier checks that its cursor belongs to this stream.
            reply(to: applier, .consuming(stream: spec.name, created: state.created))
            let fetcher = try ShardFetcher(
                connection: connection, stream: spec.name, names: ConsumerNames(node: config.nodeName, shard: shard), after: after, credit: credit,
                created: state.created, logger: logger)
            fetcher.start(queue: deliveries)
            fetchers[spec.name] = fetcher
        }
    }

    /// The stream under a consumer may have been deleted (its consumer with it) and created again, by hand
    /// or by a broker after the only server of an R1 stream lost it: its fetches fail, or simply find
    /// nothing. The stream watcher's latest identity tells; the applier is told a new one (once), decides
    /// what the cursor is worth there and subscribes again.
    private func checkIdentity(of fetcher: ShardFetcher) {
        guard let current = streamWatcher?.identities[fetcher.stream], current != 0, current != fetcher.created,
            fetcher.reportedIdentity.exchange(current, ordering: .relaxed) != current
        else { return }
        logger.error(
            "the shard stream was replaced under its consumer (deleted and created again, or lost with its only server)",
            metadata: ["stream": "\(fetcher.stream)", "created": "\(current)", "consumer_created_for": "\(fetcher.created)"])
        reply(to: applier, .consuming(stream: fetcher.stream, created: current))
        // Created again by hand, it may bind only the shared subject: this node's publishes would find no stream.
        if let connection, let shard = (1...config.replicationLog.shards).first(where: { streamSpecification($0).name == fetcher.stream }) {
            do {
                try ensureStream(shard, on: connection)
            } catch {
                logger.warning(
                    "cannot check the replaced stream's subjects; checked again at the next start",
                    metadata: ["stream": "\(fetcher.stream)", "error": "\(error)"])
            }
        }
    }

    private func stopFetchers() {
        fetchers.values.forEach { $0.stop() }
        fetchers.removeAll()
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

    private func servicePeer(_ fd: Int32, now: Double) throws {
        guard let peer = peers[fd] else { return }
        let messages: [DataMessage]
        do {
            try peer.connection.flush()
            messages = try peer.connection.readAvailable().map { frame throws(IPCError) in try DataMessage(frame: frame) }
        } catch {
            if error.kind != .connectionClosed { logger.warning("data connection failed; closing it", metadata: ["error": "\(error)"]) }
            drop(fd)
            return
        }
        for message in messages {
            do {
                try handle(message, from: peer, fd: fd, now: now)
            } catch let error as IPCError {
                logger.warning("data connection failed; closing it", metadata: ["error": "\(error)"])
                drop(fd)
                return
            }
        }
    }

    private func handle(_ message: DataMessage, from peer: Peer, fd: Int32, now: Double) throws {
        switch (peer.role, message) {
        case (nil, .hello(let role)):
            peer.role = role
            switch role {
            case .capturer:
                capturer = fd
                correlation.capturerConnected()
            case .applier:
                applier = fd
                // Its credit, granted right after its subscription, must survive consumers started later.
                credit = Credit()
            }
        case (.capturer, .publish(let publish)):
            publishBatch(publish)
        case (.applier, .subscribe(let cursor)):
            try perform(schedule.subscribeRequested(after: cursor), now: now)
        case (.applier, .credit(let count)):
            credit.grant(count)
        case (.applier, .applied(let position)):
            fetchers[position.stream]?.acknowledge(through: position.sequence)
        default:
            throw IPCError(.handshakeFailed("unexpected \(message) from \(peer.role.map { "\($0)" } ?? "an unidentified peer")"))
        }
    }

    private func publishBatch(_ publish: DataMessage.Publish) {
        // Streams are only ever ready on a connection.
        let connection = schedule.streamsReady ? self.connection : nil
        switch correlation.publishRequested(publish, jetStreamReady: connection != nil) {
        case .reply(let answer):
            reply(to: capturer, answer)
        case .send(let publish):
            guard let connection else { return }
            do {
                let subject = ChangeSubjects.own(prefix: config.nats.subjectPrefix, shard: UInt64(publish.shard), node: config.nodeID)
                try connection.publishAsync(subject: subject, payload: publish.payload, messageID: publish.messageID)
            } catch {
                reply(to: capturer, correlation.notSent(publish, reason: "\(error)"))
                return
            }
            if config.replicationLog.publishForUpstream { publishForUpstream(publish, on: connection) }
        }
    }

    /// `publish_for_upstream`: each event of the batch again, in upstream HarmonyLite's format on the shared
    /// subject, which upstream nodes consume (`UpstreamEvent.encode`). Best effort: acknowledged one by one,
    /// deduplicated by id when the capturer sends the batch again; a failure is logged, and the batch's own
    /// publish (for our nodes) is not held back by it.
    private func publishForUpstream(_ publish: DataMessage.Publish, on connection: NATSConnection) {
        guard let batch = try? ChangeBatch(decoding: publish.payload) else { return }
        let subject = ChangeSubjects.shared(prefix: config.nats.subjectPrefix, shard: UInt64(publish.shard))
        for (index, event) in batch.events.enumerated() {
            let payload = UpstreamEvent.encode(event, origin: config.nodeID, schemaHash: batch.schemaHash, compress: config.replicationLog.compress)
            do {
                try connection.publish(subject: subject, payload: payload, headers: [("Nats-Msg-Id", "\(publish.messageID).u\(index)")])
            } catch {
                logger.warning(
                    "a change was not published for upstream HarmonyLite's nodes",
                    metadata: [
                        "subject": "\(subject)", "table": "\(event.table)", "error": "\(error)",
                    ])
            }
        }
    }

    private func forwardAcknowledgements() {
        for result in acks.drain() {
            let answers: [DataMessage]
            switch result {
            case .stored(let messageID, let stream, let sequence, let duplicate):
                logAcknowledgement(messageID: messageID, stream: stream, sequence: sequence, duplicate: duplicate)
                answers = correlation.stored(messageID: messageID, stream: stream, sequence: sequence)
            case .failed(let messageID, let reason):
                logger.debug("a publish was not acknowledged", metadata: ["message_id": "\(messageID)", "error": "\(reason)"])
                answers = correlation.failed(messageID: messageID, reason: reason)
            }
            answers.forEach { reply(to: capturer, $0) }
        }
    }

    /// Every acknowledgement at debug level: after a failover, which sequence a lost message was acknowledged at,
    /// and whether JetStream answered it as a duplicate of a message id it had stored before, is the evidence.
    private func logAcknowledgement(messageID: String, stream: String, sequence: UInt64, duplicate: Bool) {
        logger.debug(
            duplicate ? "JetStream acknowledged a publish as a duplicate" : "JetStream acknowledged a publish",
            metadata: ["message_id": "\(messageID)", "stream": "\(stream)", "sequence": "\(sequence)"])
    }

    /// Hands fetched batches to the applier, each after the ranges its stream confirmed gone before it. A
    /// batch of a fetcher stopped since (the applier subscribed again) is dropped: the new consumers deliver
    /// from the applier's cursor, and a stale batch could only look like a jump.
    private func forwardDeliveries() {
        for event in deliveries.drain() {
            switch event {
            case .batch(let fetcher, let gone, let held, let batch):
                guard let stream = batch.first?.stream, fetchers[stream] === fetcher, !fetcher.isStopped else { continue }
                for range in gone {
                    logger.warning(
                        "messages are gone from the shard stream before this node applied them (trimmed by replication_log.max_entries, or deleted)",
                        metadata: [
                            "stream": "\(stream)", "missing": "\(range.lowerBound)…\(range.upperBound)",
                            "stream_holds": held.map { "\($0.firstSequence)…\($0.lastSequence)" } ?? "unknown",
                        ])
                    reply(to: applier, .gone(stream: stream, missing: range))
                }
                delivered += Int64(batch.count)
                reply(to: applier, .deliver(batch))
            case .consumingAgain(let stream, let from, let why, let consumer):
                logger.warning(
                    "consuming the shard stream again from the first message not received",
                    metadata: ["reason": "\(why)", "stream": "\(stream)", "from": "\(from)", "consumer": "\(consumer.map { "\($0)" } ?? "unknown")"])
            }
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
        if capturer == fd {
            capturer = nil
            correlation.capturerDisconnected()
        }
        if applier == fd {
            applier = nil
            schedule.applierDisconnected()
            stopFetchers()
        }
    }
}
