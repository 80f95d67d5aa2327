import IPC

/// The applier's whole decision logic, with no I/O and no clock: feed it events (with the current monotonic
/// time), execute the actions it returns, and report each operation's outcome back.
///
/// - Streams are independent: each has its own queue (`StreamLane`). A group takes everything queued in
///   every stream that is not waiting for a retry (fewer commits when behind). When a group of several
///   deliveries fails, its streams go one delivery at a time until their queues are empty, so the ones
///   before a failing one still get through and the failure names one delivery.
/// - A single delivery that fails is, by `ApplyFailure.Disposition`: parked at once (undecodable, a table,
///   column or key this node lacks); parked after `constraintRetries` retries (a constraint); or retried
///   with backoff for as long as it takes (busy, full disk, I/O: the database, not the message). Backoff is
///   0.25 s doubling to 30 s per stream, reset by a success. Only that stream waits; the cursor never
///   moves past the delivery until it is applied or parked.
/// - Parking writes the message to the dead-letter table and moves the cursor past it in one transaction;
///   it is then acknowledged like an applied one. Parked messages are retried (`retryParked`) when the
///   observed schema version or retry request changes (see `observed`).
/// - Credit: one per broker frame, once all of the frame's deliveries are applied or parked.
/// - Cursor: `cursor` is what was applied or parked, `storedCursor` what the database has, `mirroredCursor`
///   what the seq map file has; never ahead of each other in that order. A group that applies events
///   stores its cursor in the same transaction; one with only the node's own batches stores none, and the
///   cursor is stored on its own `cursorInterval` later (every write of ours can make the application's
///   writer wait for the lock). The seq map mirrors the stored cursor at most every `seqMapInterval`.
/// - Gaps: a jump in a stream's sequence is a verdict only when the broker says the stream confirmed it
///   (`gone`: the broker asked the stream, which no longer holds those messages). Then with snapshots the
///   worker stops for a restore; without, it says so once per stream and goes on. A jump the stream did not
///   confirm is the consumer's doing, never a loss: the pipeline subscribes again from the cursor.
/// - Acknowledgements (AckAll) name the cursor: a contiguous prefix of applied or parked messages, or past a
///   range the stream confirmed gone. So a message never delivered is never acknowledged by a later one.
/// - Stream identity: before a consumer's first delivery the broker says which stream it consumes
///   (`consuming`: its creation time). The first identity seen is recorded with the cursor; another one
///   later means the stream was deleted and created again, and the cursor means nothing there. With
///   snapshots the worker stops for a restore; without, the stream's cursor goes back to 0 (consumed from
///   its start, loudly): never skipping the new stream's first messages.
public struct ApplyPipeline: Sendable {
    public struct Settings: Equatable, Sendable {
        public var snapshotsEnabled: Bool
        /// Frames the broker may deliver ahead after subscribing.
        public var credit: UInt32 = 4

        /// The credit for `shards` shard streams: each stream's fetcher takes a unit per frame, and a frame
        /// holds one stream's messages, so with one pool of 4 for 4 shards each fetcher waited for the
        /// applier after every frame (4 shards replicated 100-row transactions at half the rate of one).
        /// Two frames per stream ahead, 4 at least.
        public static func credit(shards: UInt64) -> UInt32 {
            let (doubled, overflow) = shards.multipliedReportingOverflow(by: 2)
            return UInt32(clamping: overflow ? .max : max(4, doubled))
        }
        public var cursorInterval = 1.0
        public var seqMapInterval = 0.1
        public var firstBackoff = 0.25
        public var maxBackoff = 30.0
        /// How soon a cursor store or seq map write that failed is tried again.
        public var storeRetryInterval = 1.0
        /// Retries of a delivery refused by a constraint before it is parked.
        public var constraintRetries = 3

        public init(snapshotsEnabled: Bool) { self.snapshotsEnabled = snapshotsEnabled }
    }

    private enum Operation: Equatable, Sendable {
        case apply(ApplyGroup)
        case park(Parking)
        case write(CursorProgress.Write)
        case retryParked
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
    /// Messages parked since the start.
    public private(set) var parkedMessages = 0
    /// Messages in the dead-letter table, as last known.
    public private(set) var parkedWaiting: Int

    private var phase = Phase.running
    /// Stream → identity the cursor belongs to (see `consuming`).
    public private(set) var streams: [String: UInt64]
    private var lanes: [String: StreamLane] = [:]
    /// Deliveries of each broker frame not yet done; a frame's credit returns when it reaches none.
    private var framesLeft: [UInt64: Int] = [:]
    private var framesReceived: UInt64 = 0
    /// Counts broker connections, so that an outcome from before a reconnect does not touch the new queue.
    private var connection: UInt64 = 0
    private var groupsFormed: UInt64 = 0
    private var outstanding: Operation?
    private var reportedGaps: Set<String> = []
    /// Ranges the broker said the stream no longer holds, on this connection, by stream.
    private var confirmedGone: [String: [ClosedRange<UInt64>]] = [:]
    /// The schema version and retry request last observed (nil: none yet).
    private var observedSchema: ObservedSchema?
    private var parkedRetryWanted = false

    /// - Parameters:
    ///   - cursor: the database's stored cursor, which the seq map file already mirrors.
    ///   - parked: messages in the dead-letter table now.
    ///   - streams: the identities stored with the cursor (stream → creation time).
    public init(cursor: StreamCursor, streams: [String: UInt64] = [:], parked: Int = 0, settings: Settings) {
        self.settings = settings
        self.streams = streams
        progress = CursorProgress(cursor: cursor, settings: settings)
        parkedWaiting = parked
    }

    /// Applied (or parked) through here.
    public var cursor: StreamCursor { progress.applied }
    /// What the database holds.
    public var storedCursor: StreamCursor { progress.stored }
    /// What the seq map file holds.
    public var mirroredCursor: StreamCursor { progress.mirrored }

    /// Deliveries received and not yet applied.
    public var queuedDeliveries: Int { lanes.values.reduce(0) { $0 + $1.queue.count } }

    /// When the pipeline next wants `tick`, if ever.
    public var nextDeadline: Double? {
        guard phase == .running, outstanding == nil else { return nil }
        let retries = lanes.values.compactMap { $0.queue.isEmpty ? nil : $0.hold?.retryAt }
        return (retries + [progress.nextDeadline].compactMap { $0 }).min()
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

    /// One broker frame of deliveries (one credit unit; the broker's frames hold one stream each, but any
    /// mix is accounted right).
    public mutating func received(frame deliveries: [DataMessage.Delivery], now: Double) -> [Action] {
        guard !deliveries.isEmpty else { return [.grantCredit(1)] + nextOperation(now: now) }
        framesReceived += 1
        framesLeft[framesReceived] = deliveries.count
        for delivery in deliveries {
            lanes[delivery.stream, default: StreamLane()].queue.append(.init(delivery: delivery, frame: framesReceived))
        }
        return nextOperation(now: now)
    }

    /// The broker starts a consumer of `stream` (or saw the stream under one change), whose identity is
    /// `created`: recorded when none was, and when it differs from the recorded one the cursor is not this
    /// stream's.
    public mutating func consuming(stream: String, created: UInt64, now: Double) -> [Action] {
        guard phase == .running, created != 0 else { return [] }
        // Nothing consumed from it yet (cursor 0): the recorded identity guards no position, so the stream is
        // this one, as the snapshotter's restore and gap checks also hold (they act only past message 0).
        // Stopping for a restore here found nothing to restore, and the applier stopped again at its next
        // start, forever: the node never became ready.
        guard let recorded = streams[stream], recorded != 0, (cursor[stream] ?? 0) > 0 else {
            streams[stream] = created
            return [.recordStreams(streams)]
        }
        guard recorded != created else { return [] }
        let replacement = StreamReplacement(stream: stream, position: cursor[stream] ?? 0, recorded: recorded, current: created)
        if settings.snapshotsEnabled {
            phase = .stoppedForRestore
            return [.stopForReplacedStream(replacement)]
        }
        streams[stream] = created
        progress.restart(stream)
        reportedGaps.remove(stream)
        confirmedGone[stream] = nil
        startConnection()
        let positions = cursor.sorted { $0.key < $1.key }.map { DataMessage.Position(stream: $0.key, sequence: $0.value) }
        return [.restartStream(replacement), .report(.streamRestarted(replacement)), .subscribe(cursor: positions), .grantCredit(settings.credit)]
    }

    /// The broker asked the stream after a jump: it no longer holds `missing` (the next delivery of `stream`
    /// comes after them).
    public mutating func gone(stream: String, missing: ClosedRange<UInt64>, now: Double) -> [Action] {
        confirmedGone[stream, default: []].append(missing)
        return nextOperation(now: now)
    }

    /// The group is committed with its cursor; `wroteCursor` is false when nothing in it was to apply (only
    /// the node's own batches) and so nothing was written.
    public mutating func applied(_ group: ApplyGroup, wroteCursor: Bool, now: Double) -> [Action] {
        guard outstanding == .apply(group) else { return [] }
        outstanding = nil
        progress.applied(group.cursor, stored: wroteCursor, now: now)
        var actions: [Action] = []
        for stream in group.covered.keys.sorted() {
            if let hold = lanes[stream]?.hold {
                actions.append(.report(.applyingAgain(after: hold.reason)))
                lanes[stream]?.hold = nil
            }
        }
        if group.connection == connection { actions += complete(group.covered) }
        return actions + nextOperation(now: now)
    }

    /// The group's transaction failed and was rolled back.
    public mutating func applyFailed(_ group: ApplyGroup, _ failure: ApplyFailure, now: Double) -> [Action] {
        guard outstanding == .apply(group) else { return [] }
        outstanding = nil
        guard group.deliveries.count == 1, let delivery = group.deliveries.first else {
            for stream in group.covered.keys { lanes[stream]?.oneAtATime = true }
            return nextOperation(now: now)
        }
        failures += 1
        var lane = lanes[delivery.stream] ?? StreamLane()
        let attempts = (lane.hold?.attempts ?? 0) + 1
        let park: Bool
        switch failure.disposition(constraintRetries: settings.constraintRetries) {
        case .park: park = true
        case .parkAfterRetries(let retries): park = attempts > retries
        case .retry: park = false
        }
        if park, group.connection == connection {
            return [start(.park(Parking(group: group, failure: failure, attempts: attempts)))]
        }
        var actions: [Action] = []
        let backoff = lane.hold?.nextBackoff ?? settings.firstBackoff
        if failure.reason != lane.hold?.reason {
            actions.append(.report(.cannotApply(reason: failure.reason, retryIn: backoff)))
        }
        lane.oneAtATime = true
        lane.hold = .init(retryAt: now + backoff, nextBackoff: min(backoff * 2, settings.maxBackoff), attempts: attempts, reason: failure.reason)
        lanes[delivery.stream] = lane
        return actions + nextOperation(now: now)
    }

    /// The message is in the dead-letter table and the cursor past it, in one transaction.
    public mutating func parked(_ parking: Parking, now: Double) -> [Action] {
        guard outstanding == .park(parking) else { return [] }
        outstanding = nil
        progress.applied(parking.group.cursor, stored: true, now: now)
        parkedMessages += 1
        parkedWaiting += 1
        lanes[parking.delivery.stream]?.hold = nil
        var actions: [Action] = [.report(.parked(parking))]
        if parking.group.connection == connection { actions += complete(parking.group.covered) }
        return actions + nextOperation(now: now)
    }

    /// An applied group parked the events of `count` messages that name a table this node cannot apply yet
    /// (the rest of those messages applied): they wait in the dead-letter table like parked messages.
    public mutating func partlyParked(_ count: Int) {
        parkedMessages += count
        parkedWaiting += count
    }

    /// Parking failed and was rolled back (the database refuses writes): the message waits like one that
    /// cannot be applied yet, and is tried again after the backoff.
    public mutating func parkFailed(_ parking: Parking, reason: String, now: Double) -> [Action] {
        guard outstanding == .park(parking) else { return [] }
        outstanding = nil
        let stream = parking.delivery.stream
        let backoff = lanes[stream]?.hold?.nextBackoff ?? settings.firstBackoff
        let why = "cannot park message \(parking.delivery.sequence) of \(stream): \(reason)"
        var actions: [Action] = []
        if why != lanes[stream]?.hold?.reason { actions.append(.report(.cannotApply(reason: why, retryIn: backoff))) }
        lanes[stream]?.oneAtATime = true
        lanes[stream]?.hold = .init(retryAt: now + backoff, nextBackoff: min(backoff * 2, settings.maxBackoff), attempts: parking.attempts, reason: why)
        return actions + nextOperation(now: now)
    }

    /// What the glue reads at every tick: `PRAGMA schema_version` and the retry request a person left with
    /// `-retry-parked`. A change of either (or the first observation, for what was parked before a restart)
    /// retries the parked messages, if there are any.
    public mutating func observed(schemaVersion: Int64, retryRequest: String?, now: Double) -> [Action] {
        let observation = ObservedSchema(schemaVersion: schemaVersion, retryRequest: retryRequest)
        if observation != observedSchema {
            observedSchema = observation
            if parkedWaiting > 0 { parkedRetryWanted = true }
        }
        return nextOperation(now: now)
    }

    /// The parked messages were tried again: `applied` of them are applied and removed, `remaining` stay.
    public mutating func parkedRetried(applied: Int, remaining: Int, now: Double) -> [Action] {
        guard outstanding == .retryParked else { return [] }
        outstanding = nil
        parkedWaiting = remaining
        return [.report(.parkedRetried(applied: applied, remaining: remaining))] + nextOperation(now: now)
    }

    /// The retry could not read or change the dead-letter table: tried again at the next change.
    public mutating func parkedRetryFailed(reason: String, now: Double) -> [Action] {
        guard outstanding == .retryParked else { return [] }
        outstanding = nil
        return [.report(.parkedRetryFailed(reason: reason))] + nextOperation(now: now)
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

    private struct ObservedSchema: Equatable, Sendable {
        var schemaVersion: Int64
        var retryRequest: String?
    }

    private mutating func startConnection() {
        connection += 1
        for stream in lanes.keys {
            lanes[stream]?.queue.removeAll()
            lanes[stream]?.oneAtATime = false
        }
        framesLeft.removeAll()
        confirmedGone.removeAll()
    }

    /// The next operation, if one is due and none is outstanding, after what that decision entails.
    private mutating func nextOperation(now: Double) -> [Action] {
        guard outstanding == nil else { return [] }
        switch phase {
        case .stoppedForRestore:
            return []
        case .draining:
            return progress.unwritten.map { [start(.write($0))] } ?? []
        case .running:
            break
        }
        if parkedRetryWanted {
            parkedRetryWanted = false
            return [start(.retryParked)]
        }
        var actions: [Action] = []
        while true {
            switch formGroup(now: now, reports: &actions) {
            case .nothing:
                if let write = progress.due(now: now) { actions.append(start(.write(write))) }
                return actions
            case .recheck(let gap):
                // The stream did not say these are gone: the consumer skipped them (the broker normally
                // catches that itself). Consume again from the cursor; never a verdict without the stream.
                startConnection()
                let positions = cursor.sorted { $0.key < $1.key }.map { DataMessage.Position(stream: $0.key, sequence: $0.value) }
                return actions + [.report(.recheckingGap(gap)), .subscribe(cursor: positions), .grantCredit(settings.credit)]
            case .restore(let gap):
                phase = .stoppedForRestore
                return actions + [.stopForRestore(gap)]
            case .alreadyApplied(let covered):
                actions += complete(covered)
            case .apply(let group):
                return actions + [start(.apply(group))]
            }
        }
    }

    private mutating func start(_ operation: Operation) -> Action {
        outstanding = operation
        switch operation {
        case .apply(let group): return .apply(group)
        case .park(let parking): return .park(parking)
        case .write(.store(let cursor)): return .storeCursor(cursor)
        case .write(.mirror(let cursor)): return .mirrorSeqMap(cursor)
        case .retryParked: return .retryParked
        }
    }

    private enum Grouping {
        case nothing
        case apply(ApplyGroup)
        /// The first queued deliveries of these streams were applied before (redelivered): only to acknowledge.
        case alreadyApplied([String: Int])
        case restore(SequenceGap)
        /// A jump the stream did not confirm: consume again from the cursor.
        case recheck(SequenceGap)
    }

    /// The next group: one delivery of the first ready stream that goes one at a time, else everything
    /// queued in every ready stream; each stream's part ends before a gap that needs a restore.
    private mutating func formGroup(now: Double, reports: inout [Action]) -> Grouping {
        let ready = lanes.keys.sorted().filter { lanes[$0]!.isReady(now: now) }
        guard !ready.isEmpty else { return .nothing }
        let single = ready.first { lanes[$0]!.oneAtATime }
        var reached = cursor
        var fresh: [DataMessage.Delivery] = []
        var covered: [String: Int] = [:]
        for stream in single.map({ [$0] }) ?? ready {
            let lane = lanes[stream]!
            var count = 0
            for item in lane.queue.prefix(single == nil ? lane.queue.count : 1) {
                let delivery = item.delivery
                let position = reached[stream] ?? 0
                // Not `position + 1`: a cursor restored from a snapshot can be 2^64 − 1.
                if delivery.sequence > position && delivery.sequence - position > 1 {
                    let gap = SequenceGap(stream: stream, missing: position + 1...delivery.sequence - 1)
                    guard confirmedGone[stream, default: []].contains(where: { $0.contains(gap.missing.lowerBound) && $0.contains(gap.missing.upperBound) })
                    else {
                        if count == 0 { return .recheck(gap) }
                        break
                    }
                    if settings.snapshotsEnabled {
                        if count == 0 { return .restore(gap) }
                        break
                    }
                    if reportedGaps.insert(stream).inserted { reports.append(.report(.messagesLost(gap))) }
                }
                if delivery.sequence > position {
                    fresh.append(delivery)
                    reached[stream] = delivery.sequence
                }
                count += 1
            }
            covered[stream] = count
        }
        if fresh.isEmpty { return .alreadyApplied(covered) }
        groupsFormed += 1
        return .apply(ApplyGroup(number: groupsFormed, deliveries: fresh, cursor: reached, covered: covered, connection: connection))
    }

    /// Removes the first `covered[stream]` queued deliveries of each stream (applied or parked):
    /// acknowledges those streams up to the cursor and returns a credit for each frame now done.
    private mutating func complete(_ covered: [String: Int]) -> [Action] {
        var positions: [DataMessage.Position] = []
        var credit: UInt32 = 0
        for (stream, count) in covered.sorted(by: { $0.key < $1.key }) where count > 0 {
            guard var lane = lanes[stream] else { continue }
            for item in lane.queue.prefix(count) {
                framesLeft[item.frame, default: 1] -= 1
                if framesLeft[item.frame] == 0 {
                    framesLeft[item.frame] = nil
                    credit += 1
                }
            }
            lane.queue.removeFirst(min(count, lane.queue.count))
            if lane.queue.isEmpty { lane.oneAtATime = false }
            lanes[stream] = lane
            if let sequence = cursor[stream] { positions.append(.init(stream: stream, sequence: sequence)) }
        }
        var actions: [Action] = []
        if !positions.isEmpty { actions.append(.acknowledge(positions)) }
        if credit > 0 { actions.append(.grantCredit(credit)) }
        return actions
    }
}
