import IPC

/// The applier's whole decision logic, with no I/O and no clock: feed it events (with the current monotonic
/// time), execute the actions it returns, and report each operation's outcome back.
///
/// - Grouping: everything queued goes in one transaction (fewer commits when behind). When a group fails,
///   one delivery at a time until the queue is empty, so the ones before a failing one still get through
///   and the error names the failing one.
/// - Retry: a single delivery that fails is retried after a backoff (0.25 s doubling to 30 s, reset by a
///   success); the cursor never moves past it.
/// - Credit: one per broker frame, once the frame's last delivery is applied.
/// - Cursor: `cursor` is what was applied, `storedCursor` what the database has, `mirroredCursor` what the
///   seq map file has; never ahead of each other in that order. A group that applies events stores its
///   cursor in the same transaction; one with only the node's own batches stores none, and the cursor is
///   stored on its own `cursorInterval` later (every write of ours can make the application's writer wait
///   for the lock). The seq map mirrors the stored cursor at most every `seqMapInterval`.
/// - Gaps: a jump in a stream's sequence means messages are gone. With snapshots the worker stops for a
///   restore; without, it says so once per stream and goes on.
public struct ApplyPipeline: Sendable {
    public struct Settings: Equatable, Sendable {
        public var snapshotsEnabled: Bool
        /// Frames the broker may deliver ahead after subscribing.
        public var credit: UInt32 = 4
        public var cursorInterval = 1.0
        public var seqMapInterval = 0.1
        public var firstBackoff = 0.25
        public var maxBackoff = 30.0
        /// How soon a cursor store or seq map write that failed is tried again.
        public var storeRetryInterval = 1.0

        public init(snapshotsEnabled: Bool) { self.snapshotsEnabled = snapshotsEnabled }
    }

    private struct Queued: Sendable {
        var delivery: DataMessage.Delivery
        /// The last delivery of a broker frame: worth one credit once applied.
        var endsFrame: Bool
    }

    private enum Operation: Equatable, Sendable {
        case apply(ApplyGroup)
        case write(CursorProgress.Write)
    }

    private enum Phase: Equatable, Sendable {
        case running
        /// A gap needs a restore: nothing more is applied.
        case stoppedForRestore
        /// The worker stops: store and mirror the cursor now, apply nothing more.
        case draining
    }

    public let settings: Settings
    private var progress: CursorProgress
    /// Single deliveries that failed to apply (each attempt).
    public private(set) var failures = 0

    private var phase = Phase.running
    private var queue: [Queued] = []
    /// Counts broker connections, so that an outcome from before a reconnect does not touch the new queue.
    private var connection: UInt64 = 0
    private var groupsFormed: UInt64 = 0
    private var outstanding: Operation?
    private var oneAtATime = false
    private var retryAt: Double?
    private var backoff: Double
    private var lastError: String?
    private var reportedGaps: Set<String> = []

    /// - Parameter cursor: the database's stored cursor, which the seq map file already mirrors.
    public init(cursor: StreamCursor, settings: Settings) {
        self.settings = settings
        progress = CursorProgress(cursor: cursor, settings: settings)
        backoff = settings.firstBackoff
    }

    /// Applied through here.
    public var cursor: StreamCursor { progress.applied }
    /// What the database holds.
    public var storedCursor: StreamCursor { progress.stored }
    /// What the seq map file holds.
    public var mirroredCursor: StreamCursor { progress.mirrored }

    /// Deliveries received and not yet applied.
    public var queuedDeliveries: Int { queue.count }

    /// When the pipeline next wants `tick`, if ever.
    public var nextDeadline: Double? {
        guard phase == .running, outstanding == nil else { return nil }
        return [retryAt, progress.nextDeadline].compactMap { $0 }.min()
    }

    // MARK: events

    /// A new broker connection: what an old one delivered but was not applied comes again from the cursor.
    public mutating func connected(now: Double) -> [Action] {
        startConnection()
        let positions = cursor.sorted { $0.key < $1.key }.map { DataMessage.Position(stream: $0.key, sequence: $0.value) }
        return [.subscribe(cursor: positions), .grantCredit(settings.credit)] + nextOperation(now: now)
    }

    /// The broker connection closed: its deliveries will not be acknowledged or credited.
    public mutating func disconnected(now: Double) -> [Action] {
        startConnection()
        return nextOperation(now: now)
    }

    /// One broker frame of deliveries (one credit unit).
    public mutating func received(frame deliveries: [DataMessage.Delivery], now: Double) -> [Action] {
        queue += deliveries.enumerated().map { Queued(delivery: $0.element, endsFrame: $0.offset == deliveries.count - 1) }
        return nextOperation(now: now)
    }

    /// The group is committed with its cursor; `wroteCursor` is false when nothing in it was to apply (only
    /// the node's own batches) and so nothing was written.
    public mutating func applied(_ group: ApplyGroup, wroteCursor: Bool, now: Double) -> [Action] {
        guard isOutstanding(group) else { return [] }
        outstanding = nil
        progress.applied(group.cursor, stored: wroteCursor, now: now)
        backoff = settings.firstBackoff
        retryAt = nil
        var actions: [Action] = []
        if let lastError {
            actions.append(.report(.applyingAgain(after: lastError)))
            self.lastError = nil
        }
        if group.connection == connection { actions += complete(group.queuedCount) }
        return actions + nextOperation(now: now)
    }

    /// The group's transaction failed and was rolled back.
    public mutating func applyFailed(_ group: ApplyGroup, reason: String, now: Double) -> [Action] {
        guard isOutstanding(group) else { return [] }
        outstanding = nil
        var actions: [Action] = []
        if group.queuedCount > 1 {
            oneAtATime = true
        } else {
            failures += 1
            if reason != lastError {
                lastError = reason
                actions.append(.report(.cannotApply(reason: reason, retryIn: backoff)))
            }
            retryAt = now + backoff
            backoff = min(backoff * 2, settings.maxBackoff)
        }
        return actions + nextOperation(now: now)
    }

    public mutating func cursorStored(_ stored: StreamCursor, now: Double) -> [Action] {
        guard outstanding == .write(.store(stored)) else { return [] }
        outstanding = nil
        progress.stored(stored, now: now)
        return nextOperation(now: now)
    }

    /// The cursor is behind in the database, which is safe: tried again shortly (not when draining).
    public mutating func cursorStoreFailed(now: Double) -> [Action] {
        guard case .write(.store) = outstanding else { return [] }
        outstanding = nil
        progress.storeFailed(now: now)
        return phase == .draining ? [] : nextOperation(now: now)
    }

    public mutating func seqMapMirrored(_ mirrored: StreamCursor, now: Double) -> [Action] {
        guard outstanding == .write(.mirror(mirrored)) else { return [] }
        outstanding = nil
        progress.mirrored(mirrored, now: now)
        return nextOperation(now: now)
    }

    /// The seq map is behind the database, which is safe: tried again shortly (not when draining).
    public mutating func seqMapMirrorFailed(now: Double) -> [Action] {
        guard case .write(.mirror) = outstanding else { return [] }
        outstanding = nil
        progress.mirrorFailed(now: now)
        return phase == .draining ? [] : nextOperation(now: now)
    }

    /// Timed work: a retry, storing the cursor, mirroring the seq map, when due.
    public mutating func tick(now: Double) -> [Action] { nextOperation(now: now) }

    /// The worker stops: store the cursor and mirror it now, apply nothing more.
    public mutating func drain(now: Double) -> [Action] {
        phase = .draining
        return nextOperation(now: now)
    }

    // MARK: deciding

    private func isOutstanding(_ group: ApplyGroup) -> Bool {
        if case .apply(let pending) = outstanding { pending.number == group.number } else { false }
    }

    private mutating func startConnection() {
        connection += 1
        queue.removeAll()
        oneAtATime = false
    }

    /// The next operation, if one is due and none is outstanding, after what that decision entails.
    private mutating func nextOperation(now: Double) -> [Action] {
        guard outstanding == nil else { return [] }
        switch phase {
        case .stoppedForRestore:
            return []
        case .draining:
            return progress.unwritten.map { [start($0)] } ?? []
        case .running:
            break
        }
        var actions: [Action] = []
        if let retryAt, retryAt <= now { self.retryAt = nil }
        while retryAt == nil, !queue.isEmpty {
            switch formGroup(reports: &actions) {
            case .restore(let gap):
                phase = .stoppedForRestore
                return actions + [.stopForRestore(gap)]
            case .alreadyApplied(let count):
                actions += complete(count)
            case .apply(let group):
                return actions + [start(group)]
            }
        }
        if let write = progress.due(now: now) { actions.append(start(write)) }
        return actions
    }

    private mutating func start(_ group: ApplyGroup) -> Action {
        outstanding = .apply(group)
        return .apply(group)
    }

    private mutating func start(_ write: CursorProgress.Write) -> Action {
        outstanding = .write(write)
        switch write {
        case .store(let cursor): return .storeCursor(cursor)
        case .mirror(let cursor): return .mirrorSeqMap(cursor)
        }
    }

    private enum Grouping {
        case apply(ApplyGroup)
        /// The first `count` queued deliveries were applied before (redelivered): only to acknowledge.
        case alreadyApplied(count: Int)
        case restore(SequenceGap)
    }

    /// The next group from the front of the queue: all of it, or one delivery after a failure, ending
    /// before a gap that needs a restore.
    private mutating func formGroup(reports: inout [Action]) -> Grouping {
        var reached = cursor
        var fresh: [DataMessage.Delivery] = []
        var count = 0
        for item in queue.prefix(oneAtATime ? 1 : queue.count) {
            let delivery = item.delivery
            let position = reached[delivery.stream] ?? 0
            if delivery.sequence > position + 1 {
                let gap = SequenceGap(stream: delivery.stream, missing: position + 1...delivery.sequence - 1)
                if settings.snapshotsEnabled {
                    if count == 0 { return .restore(gap) }
                    break
                }
                if reportedGaps.insert(delivery.stream).inserted { reports.append(.report(.messagesLost(gap))) }
            }
            if delivery.sequence > position {
                fresh.append(delivery)
                reached[delivery.stream] = delivery.sequence
            }
            count += 1
        }
        if fresh.isEmpty { return .alreadyApplied(count: count) }
        groupsFormed += 1
        return .apply(ApplyGroup(number: groupsFormed, deliveries: fresh, cursor: reached, queuedCount: count, connection: connection))
    }

    /// Removes the first `count` queued deliveries (applied): acknowledges their streams up to the cursor
    /// and returns a credit for each frame they end.
    private mutating func complete(_ count: Int) -> [Action] {
        let done = queue.prefix(count)
        queue.removeFirst(count)
        if queue.isEmpty { oneAtATime = false }
        var streams: [String] = []
        for item in done where !streams.contains(item.delivery.stream) { streams.append(item.delivery.stream) }
        let positions = streams.compactMap { stream in cursor[stream].map { DataMessage.Position(stream: stream, sequence: $0) } }
        let frames = done.count { $0.endsFrame }
        var actions: [Action] = []
        if !positions.isEmpty { actions.append(.acknowledge(positions)) }
        if frames > 0 { actions.append(.grantCredit(UInt32(frames))) }
        return actions
    }
}
