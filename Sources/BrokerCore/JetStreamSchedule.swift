import IPC

/// When the broker connects to NATS, checks the shard streams and starts the applier's consumers, with no
/// I/O: feed it the loop's `now` and what the glue observed, carry out the actions it returns, ask
/// `nextDeadline` before waiting. Every deadline is a value in its state, so reading it again never moves it.
/// A failure reported with a `now` later than the tick's (the NATS call blocked) spaces the next try from it.
///
/// - First connection: at most `connectAttempts` attempts, `reconnectWait` apart; then `giveUp`. Once
///   connected, libnats reconnects by itself forever; the link going down and up is announced.
/// - Streams: checked while the link is up until they are ready, every `streamsRecheckInterval`.
/// - Consumers: the applier's subscription waits for the streams; a failure to create the consumers is
///   retried after `consumersRetryDelay` for as long as the applier is connected.
public struct JetStreamSchedule: Sendable {
    public struct Settings: Sendable {
        /// The NATS URLs, credentials redacted, for messages.
        public var redactedURLs: String
        /// First connection attempts at most (`nats.connect_retries`, at least 1).
        public var connectAttempts: Int
        /// Seconds between first connection attempts (`nats.reconnect_wait_seconds`, at least 1).
        public var reconnectWait: Double
        public var streamsRecheckInterval = 0.5
        public var consumersRetryDelay = 1.0

        public init(redactedURLs: String, connectRetries: Int, reconnectWaitSeconds: Int) {
            self.redactedURLs = redactedURLs
            connectAttempts = max(1, connectRetries)
            reconnectWait = Double(max(1, reconnectWaitSeconds))
        }
    }

    public enum Action: Equatable, Sendable {
        /// Try to connect; report with `connected` or `connectFailed`.
        case connect(attempt: Int, of: Int)
        /// A first connection attempt failed; the next one is `retryIn` seconds away.
        case connectAttemptFailed(attempt: Int, of: Int, reason: String, retryIn: Double)
        /// Every first connection attempt failed: stop the worker (`WorkerExit.failed`) with this reason.
        case giveUp(reason: String)
        /// The link to NATS is up (again).
        case announceLinkUp
        /// The link to NATS went down; libnats is reconnecting.
        case announceLinkDown
        /// Make sure the shard streams exist; report with `streamsReady` or `streamsNotReady`.
        case prepareStreams
        /// The streams are ready: tell the supervisor the broker can do its job.
        case reportReady
        /// The streams are not ready for a reason not announced before.
        case announceWaitingForJetStream(reason: String)
        /// The same problem still keeps the streams from being ready, `seconds` after it was first
        /// announced: said again every `stillWaitingInterval` s ("still waiting for JetStream (N s): reason").
        case announceStillWaitingForJetStream(reason: String, seconds: Int)
        /// Create the shard consumers after `cursor`; report with `consumersStarted` or `consumersFailed`.
        case startConsumers(after: [DataMessage.Position])
        /// Creating the consumers failed for a reason not announced before; they are tried again `retryIn`
        /// seconds later (and every `consumersRetryDelay` after that).
        case announceConsumersNotStarted(reason: String, retryIn: Double)
    }

    enum Link: Equatable, Sendable {
        /// Before the first connection: `attempts` made, the next one due at `nextAttemptAt` (infinity while
        /// an attempt is under way).
        case connecting(attempts: Int, nextAttemptAt: Double)
        /// Connected once; libnats keeps it. `up`: as last announced.
        case established(up: Bool)
        case gaveUp
    }

    public let settings: Settings
    private(set) var link: Link
    public private(set) var streamsReady = false
    private(set) var streamsCheckAt: Double
    private var announcedStreamsProblem: String?
    /// When the announced problem was first and last said.
    private var streamsProblemSince = 0.0
    private var streamsProblemSaid = 0.0
    public static let stillWaitingInterval = 10.0
    /// The applier's cursor while its consumers are not running.
    public private(set) var pendingSubscription: [DataMessage.Position]?
    private(set) var consumersRetryAt: Double?
    private var announcedConsumersProblem: String?

    public init(settings: Settings, now: Double) {
        self.settings = settings
        link = .connecting(attempts: 0, nextAttemptAt: now)
        streamsCheckAt = now
    }

    /// When `tick` has work next; nil: only an event brings any.
    public var nextDeadline: Double? {
        switch link {
        case .connecting(_, let at): return at.isFinite ? at : nil
        case .gaveUp: return nil
        case .established:
            if !streamsReady { return streamsCheckAt }
            return pendingSubscription == nil ? nil : consumersRetryAt
        }
    }

    // MARK: events

    /// Timed work. `linkUp`: whether the NATS connection is up now (false before the first connection).
    public mutating func tick(now: Double, linkUp: Bool) -> [Action] {
        switch link {
        case .gaveUp:
            return []
        case .connecting(let attempts, let at):
            guard now >= at else { return [] }
            link = .connecting(attempts: attempts + 1, nextAttemptAt: .infinity)
            return [.connect(attempt: attempts + 1, of: settings.connectAttempts)]
        case .established(let wasUp):
            var actions: [Action] = []
            if linkUp != wasUp {
                link = .established(up: linkUp)
                actions.append(linkUp ? .announceLinkUp : .announceLinkDown)
            }
            if !streamsReady && now >= streamsCheckAt {
                streamsCheckAt = now + settings.streamsRecheckInterval
                if linkUp { actions.append(.prepareStreams) }
            }
            if streamsReady, let cursor = pendingSubscription, let at = consumersRetryAt, now >= at {
                consumersRetryAt = nil
                actions.append(.startConsumers(after: cursor))
            }
            return actions
        }
    }

    /// The `connect` action succeeded. Returns what is due right away (announcing the link, the streams).
    public mutating func connected(now: Double, linkUp: Bool) -> [Action] {
        link = .established(up: false)
        streamsCheckAt = now
        return tick(now: now, linkUp: linkUp)
    }

    /// The `connect` action failed with `reason` at `now` (an attempt can take seconds: the next one is
    /// spaced from the end of this one).
    public mutating func connectFailed(reason: String, now: Double) -> [Action] {
        guard case .connecting(let attempts, _) = link else { return [] }
        guard attempts < settings.connectAttempts else {
            link = .gaveUp
            return [
                .giveUp(
                    reason: "could not connect to NATS at \(settings.redactedURLs) in \(settings.connectAttempts) attempts (nats.connect_retries): \(reason)")
            ]
        }
        link = .connecting(attempts: attempts, nextAttemptAt: now + settings.reconnectWait)
        return [.connectAttemptFailed(attempt: attempts, of: settings.connectAttempts, reason: reason, retryIn: settings.reconnectWait)]
    }

    /// The `prepareStreams` action succeeded.
    public mutating func streamsPrepared() -> [Action] {
        guard !streamsReady else { return [] }
        streamsReady = true
        announcedStreamsProblem = nil
        var actions: [Action] = [.reportReady]
        if let cursor = pendingSubscription {
            consumersRetryAt = nil
            actions.append(.startConsumers(after: cursor))
        }
        return actions
    }

    /// The `prepareStreams` action failed at `now`; checked again an interval later.
    public mutating func streamsNotReady(reason: String, now: Double) -> [Action] {
        streamsCheckAt = max(streamsCheckAt, now + settings.streamsRecheckInterval)
        guard reason != announcedStreamsProblem else {
            guard now - streamsProblemSaid >= Self.stillWaitingInterval else { return [] }
            streamsProblemSaid = now
            return [.announceStillWaitingForJetStream(reason: reason, seconds: Int(now - streamsProblemSince))]
        }
        announcedStreamsProblem = reason
        (streamsProblemSince, streamsProblemSaid) = (now, now)
        return [.announceWaitingForJetStream(reason: reason)]
    }

    /// The applier asks for every shard after `cursor`: started now if the streams are ready, else once
    /// they are.
    public mutating func subscribeRequested(after cursor: [DataMessage.Position]) -> [Action] {
        pendingSubscription = cursor
        consumersRetryAt = nil
        return streamsReady ? [.startConsumers(after: cursor)] : []
    }

    /// The `startConsumers` action succeeded.
    public mutating func consumersStarted() {
        pendingSubscription = nil
        consumersRetryAt = nil
        announcedConsumersProblem = nil
    }

    /// The `startConsumers` action failed at `now`: tried again `consumersRetryDelay` later.
    public mutating func consumersFailed(reason: String, now: Double) -> [Action] {
        guard pendingSubscription != nil else { return [] }
        consumersRetryAt = now + settings.consumersRetryDelay
        guard reason != announcedConsumersProblem else { return [] }
        announcedConsumersProblem = reason
        return [.announceConsumersNotStarted(reason: reason, retryIn: settings.consumersRetryDelay)]
    }

    /// The applier's connection ended: no consumers are wanted until it subscribes again.
    public mutating func applierDisconnected() {
        pendingSubscription = nil
        consumersRetryAt = nil
        announcedConsumersProblem = nil
    }
}
