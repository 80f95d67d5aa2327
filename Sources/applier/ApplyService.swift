import ApplyPipeline
import ChangeEvents
import ChangeLog
import HarmonyConfig
import IPC
import Logging
import SQLiteKit
import Signals
import WorkerRuntime

#if canImport(Glibc)
import Glibc
#endif

/// The applier's I/O: receives deliveries from the broker, and executes what `ApplyPipeline` decides:
/// applies groups through `ChangeApplier` (each in one transaction with the cursor), parks what cannot be
/// applied in the dead-letter table (`ParkedMessages`) and retries it, sends subscriptions,
/// acknowledgements and credit to the broker, stores the cursor, writes the seq map, logs and reports
/// status. The node's own messages captured from this very database (`MessageIdentity.isHeld`: its node,
/// its incarnation, on its own subject) are skipped whole, undecoded; its other own events (published
/// before a restore) are applied only where their stamp is above the row's clock (what the snapshot
/// lacks), found by reading, so they normally cost no write. At
/// every tick it reads the schema version and the `-retry-parked` request for the pipeline; a new schema
/// version also renews the `ChangeApplier`, whose table catalog (and so its columns) is read once.
final class ApplyService: WorkerLoopHandler {
    typealias Action = ApplyPipeline.Action

    private let runtime: WorkerRuntime
    private let config: Configuration
    private let logger: Logger
    private let database: SQLiteDatabase
    private let applier: ChangeApplier
    private let broker: BrokerChannel
    private var pipeline: ApplyPipeline
    /// Held while this worker runs: no snapshot restore runs under it (`RestoreLock`).
    private let restoreLock: RestoreLock
    /// How the ids of this node's messages read from this database start (`MessageIdentity.heldPrefix`), and
    /// the subjects only this node publishes on: such messages are held here already.
    private let heldPrefix: String
    private let ownSubjects: Set<String>

    private var appliedEvents: Int64 = 0
    private var supersededEvents: Int64 = 0
    private var uniqueConflicts: Int64 = 0
    /// When this node last committed another node's change (wall clock, ms), 0 before the first.
    private var lastAppliedAt: Int64 = 0
    private var observations = ObservationAccumulator()
    /// The schema version the last tick saw (nil before the first).
    private var seenSchemaVersion: Int64?
    /// `max_clock_offset`: remote stamps beyond it are applied, counted and logged (`watchClocks`).
    private let clockBound: ClockBound
    private var clockOffsets = ClockOffsetEstimator()
    private var futureStamps: Int64 = 0
    private var futureStampLog = RateLimit(interval: 10_000)
    private var clockBehindLog = RateLimit(interval: 60_000)

    init(runtime: WorkerRuntime) throws {
        self.runtime = runtime
        config = runtime.configuration
        logger = runtime.logger
        clockBound = ClockBound(maxOffsetMilliseconds: UInt64(config.maxClockOffset))
        restoreLock = try RestoreLock.holdWhileRunning(runDirectory: runtime.runDirectory)
        // An application transaction can hold the write lock for as long as it likes: the applier waits, with
        // its heartbeats going and saying what it waits for (`WorkerRuntime.whileWaitingForDatabase`).
        let (database, installation): (SQLiteDatabase, ChangeLogInstallation)
        do {
            (database, installation) = try ChangeLogInstaller.open(
                config.dbPath, node: config.nodeID, upstreamSeqMap: config.seqMapPath, whileWaiting: runtime.whileWaitingForDatabase)
        } catch {
            let message = ChangeLogInstaller.cannotStart(error, path: config.dbPath)
            throw UpstreamTakeover.isRefusal(error) ? WorkerExit.refused(message) : WorkerExit.failed(message)
        }
        self.database = database
        heldPrefix = MessageIdentity.heldPrefix(node: config.nodeID, incarnation: installation.incarnation)
        let (prefix, node) = (config.nats.subjectPrefix, config.nodeID)
        ownSubjects = Set((1...max(1, config.replicationLog.shards)).map { ChangeSubjects.own(prefix: prefix, shard: $0, node: node) })
        // What this worker's installation changed (an upstream takeover, a renamed table), when it ran first.
        for note in installation.notes { logger.warning("the capture installation has a note", metadata: ["note": "\(note)"]) }
        applier = try ChangeApplier(database: database, catalog: installation.catalog)
        broker = BrokerChannel(runDirectory: runtime.runDirectory, role: .applier)
        let cursor = try applier.storedCursor()
        do {
            if try SeqMapFile.read(config.seqMapPath) == nil {
                logger.info(
                    "no seq map: consuming from the database's cursor", metadata: ["seq_map": "\(config.seqMapPath)", "cursor": "\(describeCursor(cursor))"])
            }
        } catch {
            // Upstream HarmonyLite's seq map (empty, or with bytes after its map) was read at the takeover.
            if (try? SeqMapFile.readUpstream(config.seqMapPath)) == nil {
                logger.error(
                    "the seq map cannot be read: consuming from the database's cursor", metadata: ["error": "\(error)", "cursor": "\(describeCursor(cursor))"])
            }
        }
        let streams = try StreamIdentities.read(in: database)
        var settings = ApplyPipeline.Settings(snapshotsEnabled: config.snapshot.enabled)
        settings.credit = ApplyPipeline.Settings.credit(shards: config.replicationLog.shards)
        try SeqMapFile.write(cursor, streams: streams, to: config.seqMapPath)
        pipeline = ApplyPipeline(
            cursor: cursor, streams: streams, parked: try ParkedMessages.count(in: database),
            settings: settings)
        if config.replicate {
            try runtime.reportReady("applying changes from cursor \(cursor.isEmpty ? "start" : describeCursor(cursor))")
        } else {
            try runtime.reportReady("replicate=false: other nodes' changes are not applied")
        }
    }

    // MARK: WorkerLoopHandler

    var descriptors: [pollfd] { broker.descriptor.map { [$0] } ?? [] }

    var nextDeadline: Double? { pipeline.nextDeadline }

    var counters: [ControlMessage.Counter] {
        [
            .init(.appliedEvents, appliedEvents), .init(.supersededEvents, supersededEvents), .init(.applyFailures, Int64(pipeline.failures)),
            .init(.queuedDeliveries, Int64(pipeline.queuedDeliveries)), .init(.parkedMessages, Int64(pipeline.parkedMessages)),
            .init(.parkedWaiting, Int64(pipeline.parkedWaiting)), .init(.uniqueConflicts, uniqueConflicts),
            .init(.lastAppliedUnixMs, lastAppliedAt), .init(.futureStamps, futureStamps),
        ]
            + clockAheadCounters
            + pipeline.cursor.sorted { $0.key < $1.key }.map { .init(.streamCursor, label: $0.key, Int64(clamping: $0.value)) }
    }

    func takeObservations() -> [Observations] { observations.take() }

    /// The origin whose stamps run farthest ahead of this node's clock, and by how much (ms), while the
    /// estimate is current; without one (no remote change for a minute), a lead of 0 and no origin, so the
    /// exported gauge does not keep an old lead.
    private var clockAheadCounters: [ControlMessage.Counter] {
        guard let farthest = clockOffsets.farthestAhead(at: Int64(monotonicSeconds() * 1000)) else { return [.init(.clockAheadMs, 0)] }
        return [.init(.clockAheadMs, farthest.aheadMilliseconds), .init(.clockAheadOrigin, Int64(clamping: farthest.origin))]
    }

    func handle(readable: [pollfd], now: Double) throws {
        let (messages, closed) = broker.receive()
        for message in messages {
            switch message {
            case .deliver(let deliveries): try perform(pipeline.received(frame: deliveries, now: now))
            case .consuming(let stream, let created): try perform(pipeline.consuming(stream: stream, created: created, now: now))
            case .gone(let stream, let missing): try perform(pipeline.gone(stream: stream, missing: missing, now: now))
            default: break
            }
        }
        if let closed {
            if closed.kind != .connectionClosed { logger.warning("the broker connection failed", metadata: ["error": "\(closed)"]) }
            try perform(pipeline.disconnected(now: now))
        }
    }

    func tick(now: Double) throws {
        guard config.replicate else { return }
        if broker.connectIfNeeded() { try perform(pipeline.connected(now: now)) }
        try perform(pipeline.tick(now: now))
        do {
            // The ChangeApplier re-reads the schema itself at its next batch when the version moved.
            let watched = try ParkedMessages.watched(in: database)
            if let seen = seenSchemaVersion, seen != watched.schemaVersion, try applier.holdsRowsAside() {
                // A migration (an index dropped, say) may free values rows held aside want: settle them now,
                // not at the next write to their table.
                account(try applier.apply([]))
            }
            seenSchemaVersion = watched.schemaVersion
            try perform(pipeline.observed(schemaVersion: watched.schemaVersion, retryRequest: watched.retryRequest, now: now))
        } catch let error as SQLiteError {
            logger.warning("cannot read the schema version; looking again at the next tick", metadata: ["reason": "\(error)"])
        }
    }

    /// Stores the cursor and mirrors it now (also when the worker stops for a restore).
    func drain() throws {
        try perform(pipeline.drain(now: monotonicSeconds()), draining: true)
    }

    // MARK: executing the pipeline's actions

    /// Executes `actions` and what the outcomes of its operations lead to. Outcomes are reported with the
    /// time they happened. When draining, a failed store is an error of the stop, not retried.
    private func perform(_ actions: [Action], draining: Bool = false) throws {
        var pending = actions[...]
        while let action = pending.popFirst() {
            pending = try execute(action, draining: draining)[...] + pending
        }
    }

    /// Does one action; returns the pipeline's answer to an operation's outcome.
    private func execute(_ action: Action, draining: Bool) throws -> [Action] {
        switch action {
        case .subscribe(let cursor):
            broker.send(.subscribe(cursor: cursor))
        case .grantCredit(let count):
            broker.send(.credit(count: count))
        case .acknowledge(let positions):
            for position in positions { broker.send(.applied(position)) }
        case .apply(let group):
            return apply(group)
        case .park(let parking):
            return park(parking)
        case .retryParked:
            return retryParked()
        case .storeCursor(let cursor):
            do {
                account(try applier.apply([], cursor: cursor))
                return pipeline.cursorStored(cursor, now: monotonicSeconds())
            } catch {
                if draining { throw error }
                logger.error("cannot store the cursor; trying again in 1 s", metadata: ["reason": "\(error)"])
                return pipeline.cursorStoreFailed(now: monotonicSeconds())
            }
        case .mirrorSeqMap(let cursor):
            do {
                try SeqMapFile.write(cursor, streams: pipeline.streams, to: config.seqMapPath)
                return pipeline.seqMapMirrored(cursor, now: monotonicSeconds())
            } catch {
                if draining { throw error }
                logger.error("cannot mirror the cursor to the seq map; trying again in 1 s", metadata: ["reason": "\(error)"])
                return pipeline.seqMapMirrorFailed(now: monotonicSeconds())
            }
        case .report(let report):
            self.report(report)
        case .stopForRestore(let gap):
            try? runtime.reportStatus("needs a snapshot restore: \(gap)")
            throw WorkerExit.restoreNeeded("\(gap); only a snapshot restore brings them back: the supervisor restores one in place")
        case .stopForReplacedStream(let replacement):
            logger.error(
                "the shard stream was replaced: a snapshot restore brings this node up to date",
                metadata: ["stream": "\(replacement.stream)", "detail": "\(replacement)"])
            try? runtime.reportStatus("needs a snapshot restore: \(replacement)")
            throw WorkerExit.restoreNeeded("\(replacement); only a snapshot restore brings this node up to date: the supervisor restores one in place")
        case .recordStreams(let streams):
            do {
                account(try applier.apply([], streams: streams))
                try SeqMapFile.write(pipeline.storedCursor, streams: streams, to: config.seqMapPath)
            } catch {
                logger.warning("cannot record which streams the cursor belongs to; recorded at the next consumer start", metadata: ["reason": "\(error)"])
            }
        case .restartStream(let replacement):
            account(try applier.apply([], cursor: [replacement.stream: 0], streams: [replacement.stream: replacement.current]))
            try SeqMapFile.write(pipeline.storedCursor, streams: pipeline.streams, to: config.seqMapPath)
        }
        return []
    }

    /// Counts what an apply did and logs every UNIQUE conflict it settled (each is also a row in the
    /// conflicts table): what lost is never dropped silently.
    private func account(_ outcome: ChangeApplier.Outcome) {
        appliedEvents += Int64(outcome.applied)
        supersededEvents += Int64(outcome.superseded)
        uniqueConflicts += Int64(outcome.conflicts.count)
        for conflict in outcome.conflicts {
            logger.warning(
                "row held aside: a row written later holds its UNIQUE value; it comes back when the value is free",
                metadata: [
                    "table": "\(conflict.table)", "unique": "\(conflict.columns)",
                    "held_aside": "\(conflict.heldAsideKey)", "holder": "\(conflict.holderKey)",
                    "recorded_in": "\(ChangeLogSchema.conflicts)",
                ])
        }
        for index in outcome.unreadableIndexes {
            logger.error(
                "a UNIQUE index's definition does not evaluate on a row: rows it refuses stay held aside here, and nodes may disagree about them; report it",
                metadata: ["index": "\(index)"])
        }
        if outcome.placedAgain > 0 {
            logger.info("rows held aside are back in their tables: their UNIQUE values are free", metadata: ["rows": "\(outcome.placedAgain)"])
        }
    }

    /// Decodes the group, keeps of the node's own batches only the events above their rows' clocks (normally
    /// none; after a restore, what the snapshot lacks), applies the rest with the group's cursor.
    private func apply(_ group: ApplyPipeline.ApplyGroup) -> [Action] {
        do {
            // This node's messages captured from this very database are held here: not even decoded,
            // unless rows held aside may want what they wrote (`localWrites` below; one read per group).
            let held = group.deliveries.map(isHeldHere)
            let settleOwn = held.contains(true) ? try applier.holdsRowsAside() : false
            let batches = try zip(group.deliveries, held).map { delivery, held throws(DeliveryError) in
                held && !settleOwn ? ChangeBatch(origin: config.nodeID, schemaHash: "", events: []) : try decode(delivery)
            }
            var wanted = batches.map(\.events)
            // The node's other own events only where its rows do not hold them yet (after a restore: what the
            // snapshot lacks): all of the group's own batches in one read.
            let own = batches.indices.filter { batches[$0].origin == config.nodeID }
            let toCheck = own.filter { !held[$0] }
            if !toCheck.isEmpty {
                for (index, events) in zip(toCheck, try applier.notYetHeld(inEach: toCheck.map { batches[$0].events })) { wanted[index] = events }
            }
            for index in own where held[index] { wanted[index] = [] }
            var events: [ChangeEvent] = []
            var streams: [String] = []
            var sources: [ChangeApplier.EventSource] = []
            for ((delivery, batch), kept) in zip(zip(group.deliveries, batches), wanted) {
                events += kept
                streams += Array(repeating: delivery.stream, count: kept.count)
                sources += Array(
                    repeating: .init(stream: delivery.stream, sequence: delivery.sequence, origin: batch.origin, schemaHash: batch.schemaHash),
                    count: kept.count)
            }
            // The node's own writes may have freed, or taken, a UNIQUE value a row held aside wants: their
            // tables are settled too (one read when no row is held aside, which is the common case).
            let localWrites = try own.isEmpty || !(held.contains(true) ? settleOwn : applier.holdsRowsAside()) ? [] : own.flatMap { batches[$0].events }
            guard !events.isEmpty || !localWrites.isEmpty else { return pipeline.applied(group, wroteCursor: false, now: monotonicSeconds()) }
            let outcome = try applier.apply(events, cursor: group.cursor, localWrites: localWrites, sources: sources)
            account(outcome)
            for message in outcome.partlyParked {
                logger.warning(
                    "rows of a table this node cannot apply yet are parked; the message's other rows are applied",
                    metadata: [
                        "stream": "\(message.stream)", "sequence": "\(message.sequence)", "kind": "\(message.kind)", "reason": "\(message.reason)",
                    ])
            }
            pipeline.partlyParked(outcome.partlyParked.count)
            watchClocks(batches)
            recordLag(events, streams: streams)
            return pipeline.applied(group, wroteCursor: true, now: monotonicSeconds())
        } catch let error as DeliveryError {
            return pipeline.applyFailed(group, .init(kind: error.kind, reason: "\(error)"), now: monotonicSeconds())
        } catch let error as ApplyError {
            return pipeline.applyFailed(group, .init(kind: Self.failureKind(error.kind), reason: "\(error)"), now: monotonicSeconds())
        } catch let error as SQLiteError {
            return pipeline.applyFailed(group, .init(kind: .database(error.code), reason: "\(error)"), now: monotonicSeconds())
        } catch {
            return pipeline.applyFailed(group, .init(kind: .database(1), reason: "\(error)"), now: monotonicSeconds())
        }
    }

    /// The bound on time for applied remote batches: counts the events stamped beyond `now + max_clock_offset`
    /// (applied all the same: convergence first) and feeds the offset estimate with each batch's newest
    /// stamp; logs both at most every 10 s / 60 s. One integer comparison per event.
    private func watchClocks(_ batches: [ChangeBatch]) {
        let now = wallClockMilliseconds()
        let observedAt = Int64(monotonicSeconds() * 1000)
        let limit = clockBound.limit(now: now)
        for batch in batches where batch.origin != config.nodeID && !batch.events.isEmpty {
            var newest: UInt64 = 0
            var future: Int64 = 0
            for event in batch.events {
                if event.stamp > newest { newest = event.stamp }
                if event.stamp > limit { future += 1 }
            }
            clockOffsets.observe(origin: batch.origin, newestStamp: newest, now: now, observedAt: observedAt)
            guard future > 0 else { continue }
            futureStamps += future
            if let held = futureStampLog.allow(now: observedAt), case .ahead(let ahead) = clockBound.check(stamp: newest, now: now) {
                logger.warning(
                    "applied changes stamped beyond max_clock_offset: applied all the same, counted in future_stamps",
                    metadata: [
                        "origin": "\(batch.origin)", "ahead_ms": "\(ahead)", "max_clock_offset_ms": "\(clockBound.maxOffsetMilliseconds)",
                        "events": "\(future)", "future_stamps": "\(futureStamps)", "batches_not_logged": "\(held)",
                    ])
            }
        }
        if let farthest = clockOffsets.farthestAhead(at: observedAt), ClockOffsetEstimator.isBehind(farthest, bound: clockBound),
            clockBehindLog.allow(now: observedAt) != nil
        {
            logger.warning(
                "this node's clock is behind another node's by more than max_clock_offset (or that node's runs ahead): its writes win over later ones made here; fix the clocks (NTP)",
                metadata: [
                    "origin": "\(farthest.origin)", "offset_ms": "\(farthest.aheadMilliseconds)", "max_clock_offset_ms": "\(clockBound.maxOffsetMilliseconds)",
                ])
        }
    }

    /// Commit on the origin (the HLC stamp's milliseconds) to commit here, per stream, for /metrics.
    private func recordLag(_ events: [ChangeEvent], streams: [String]) {
        guard !events.isEmpty else { return }
        let now = wallClockMilliseconds()
        lastAppliedAt = now
        for (event, stream) in zip(events, streams) {
            let committed = Int64(clamping: event.stamp >> 16)
            observations.record(.applyLag, Double(now - committed) / 1000, label: stream)
        }
    }

    private static func parkedKind(_ kind: ApplyFailure.Kind) -> ParkedKind {
        switch kind {
        case .undecodable: .undecodable
        case .forgedOrigin: .forgedOrigin
        case .schemaMissing: .schemaMissing
        case .keyMismatch: .keyMismatch
        case .database(let code): .database(code)
        }
    }

    private static func failureKind(_ kind: ApplyError.Kind) -> ApplyFailure.Kind {
        switch kind {
        case .schemaMissing: .schemaMissing
        case .keyMismatch: .keyMismatch
        case .database(let code): .database(code)
        }
    }

    /// Writes the message to the dead-letter table and the cursor past it, in one transaction.
    private func park(_ parking: ApplyPipeline.Parking) -> [Action] {
        let delivery = parking.delivery
        // Upstream's message of a table this node lacks: parked with its stamp, which its retry needs.
        let waitsForSchema = parking.failure.kind == .schemaMissing || parking.failure.kind == .keyMismatch
        let payload =
            waitsForSchema && UpstreamEvent.looksUpstream(delivery.payload)
            ? ParkedUpstreamEvent.wrap(
                stamp: UpstreamEvent.stamp(jetStreamNanoseconds: delivery.timestamp, sequence: delivery.sequence), message: delivery.payload)
            : delivery.payload
        let message = ParkedMessage(
            stream: delivery.stream, sequence: delivery.sequence, payload: payload, reason: parking.failure.reason,
            kind: Self.parkedKind(parking.failure.kind), attempts: parking.attempts)
        do {
            try ParkedMessages.park(message, cursor: parking.group.cursor, in: database)
            return pipeline.parked(parking, now: monotonicSeconds())
        } catch {
            return pipeline.parkFailed(parking, reason: "\(error)", now: monotonicSeconds())
        }
    }

    /// Applies the parked messages again in (stream, sequence) order, each in its own transaction, then
    /// removes it; what still fails stays, with one more attempt. A crash between applying one and removing
    /// it only applies it once more later, which last-writer-wins makes harmless.
    private func retryParked() -> [Action] {
        do {
            let messages = try ParkedMessages.all(in: database)
            var applied = 0
            // A forged message stays parked: the subject that proved it forged is not kept to check again.
            // Column values kept aside are shown, never retried (no retry can tell which column they belong to).
            for message in messages where message.kind.isRetried {
                do {
                    // Every event by its stamp, the node's own too (its row clock decides, as for any other).
                    // The rows of a table still missing here are parked again under the same message, alone.
                    let batch: ChangeBatch
                    if let parked = ParkedUpstreamEvent.unwrap(message.payload) {
                        batch = try upstreamBatch(parked.message, stamp: parked.stamp, stream: message.stream, sequence: message.sequence)
                    } else {
                        batch = try ChangeBatch(decoding: message.payload)
                    }
                    let source = ChangeApplier.EventSource(
                        stream: message.stream, sequence: message.sequence, origin: batch.origin, schemaHash: batch.schemaHash)
                    let outcome = try applier.apply(batch.events, sources: Array(repeating: source, count: batch.events.count))
                    account(outcome)
                    if !outcome.partlyParked.isEmpty {
                        try ParkedMessages.failedAgain(stream: message.stream, sequence: message.sequence, reason: outcome.partlyParked[0].reason, in: database)
                        continue
                    }
                } catch {
                    try ParkedMessages.failedAgain(stream: message.stream, sequence: message.sequence, reason: "\(error)", in: database)
                    continue
                }
                try ParkedMessages.remove(stream: message.stream, sequence: message.sequence, in: database)
                applied += 1
            }
            return pipeline.parkedRetried(applied: applied, remaining: messages.count - applied, now: monotonicSeconds())
        } catch {
            return pipeline.parkedRetryFailed(reason: "\(error)", now: monotonicSeconds())
        }
    }

    /// Whether this node captured the delivery from this very database (`MessageIdentity.isHeld`): its
    /// subject is this node's own, its id names this node and this database's incarnation.
    private func isHeldHere(_ delivery: DataMessage.Delivery) -> Bool {
        delivery.republishedFrom == nil
            && MessageIdentity.isHeld(
                messageID: delivery.messageID, publisher: ownSubjects.contains(delivery.subject) ? config.nodeID : nil,
                node: config.nodeID, heldPrefix: heldPrefix)
    }

    /// The batch, once its subject confirms its origin (or names no publisher: the shared subject of
    /// HarmonyLite publishers and external NATS, accepted unchecked).
    private func decode(_ delivery: DataMessage.Delivery) throws(DeliveryError) -> ChangeBatch {
        let batch: ChangeBatch
        do {
            batch = try ChangeBatch(decoding: delivery.payload)
        } catch {
            guard UpstreamEvent.looksUpstream(delivery.payload) else {
                throw DeliveryError(stream: delivery.stream, sequence: delivery.sequence, reason: "cannot be decoded: \(error)")
            }
            batch = try decodeUpstream(delivery)
        }
        if let from = delivery.republishedFrom {
            // Republished by another stream onto a change subject: the subject was never the publisher's.
            throw DeliveryError(
                stream: delivery.stream, sequence: delivery.sequence,
                reason:
                    "refused, never applied: it carries republish headers (Nats-Stream \(from.isEmpty ? "absent" : "\"" + from + "\"")): another stream republished it onto \(delivery.subject), which therefore does not name its publisher",
                kind: .forgedOrigin)
        }
        if case .refused(let reason) = ChangeSubjects.check(subject: delivery.subject, prefix: config.nats.subjectPrefix, origin: batch.origin) {
            throw DeliveryError(stream: delivery.stream, sequence: delivery.sequence, reason: "refused, never applied: \(reason)", kind: .forgedOrigin)
        }
        return batch
    }

    /// Upstream HarmonyLite's message (one row, no row clock) as one of our batches: its key columns are
    /// the local table's, its stamp the message's JetStream time and sequence (`UpstreamEvent.stamp`), its
    /// writer the origin. The node's own (published by upstream before this node was upgraded) are
    /// skipped, as upstream skips them: what they wrote is in this database already.
    private func decodeUpstream(_ delivery: DataMessage.Delivery) throws(DeliveryError) -> ChangeBatch {
        try upstreamBatch(
            delivery.payload, stamp: UpstreamEvent.stamp(jetStreamNanoseconds: delivery.timestamp, sequence: delivery.sequence),
            stream: delivery.stream, sequence: delivery.sequence)
    }

    /// `payload` (upstream's message) as one of our batches stamped `stamp`: at its delivery, or at a retry
    /// of it parked (`ParkedUpstreamEvent`, which kept the stamp). A table (or key column) this node lacks
    /// fails as `schemaMissing` (`keyMismatch`): parked, and applied by a retry once the table exists.
    private func upstreamBatch(_ payload: [UInt8], stamp: UInt64, stream: String, sequence: UInt64) throws(DeliveryError) -> ChangeBatch {
        let event: UpstreamEvent
        do {
            event = try UpstreamEvent(decoding: payload)
        } catch {
            throw DeliveryError(stream: stream, sequence: sequence, reason: "cannot be decoded as ours or as upstream HarmonyLite's: \(error)")
        }
        // Copies our nodes publish for upstream nodes (`publish_for_upstream`): the original batch is applied.
        guard event.origin != config.nodeID, !event.republished else {
            return ChangeBatch(origin: event.origin, schemaHash: event.schemaHash ?? "", events: [])
        }
        let key: [String]?
        do {
            key = try applier.primaryKeyColumns(of: event.table)
        } catch {
            throw DeliveryError(stream: stream, sequence: sequence, reason: "cannot read the schema: \(error)", kind: .database(error.code))
        }
        guard let key else {
            throw DeliveryError(
                stream: stream, sequence: sequence,
                reason: "is upstream HarmonyLite's change of \(event.table), a table this node does not replicate (yet): "
                    + "parked until it exists (upstream's messages do not say which columns are the key)", kind: .schemaMissing)
        }
        guard let change = event.changeEvent(primaryKey: key, stamp: stamp, writer: event.origin) else {
            throw DeliveryError(
                stream: stream, sequence: sequence,
                reason: "is upstream HarmonyLite's change of \(event.table) without its local key column(s) \(key.joined(separator: ", "))",
                kind: .keyMismatch)
        }
        return ChangeBatch(origin: event.origin, schemaHash: event.schemaHash ?? "", events: [change])
    }

    private func report(_ report: ApplyPipeline.Report) {
        switch report {
        case .cannotApply(let reason, let retryIn):
            logger.error("cannot apply: retrying until it applies", metadata: ["reason": "\(reason)", "retry_in": "\(retryIn)"])
            try? runtime.reportStatus("cannot apply: \(reason)")
        case .applyingAgain(let reason):
            logger.info("applying again", metadata: ["after": "\(reason)"])
            try? runtime.reportStatus("applying")
        case .parked(let parking) where parking.failure.kind == .forgedOrigin:
            logger.error(
                "message refused and parked, never applied: its subject does not name its origin (a node publishing another's changes?); the shard goes on",
                metadata: [
                    "stream": "\(parking.delivery.stream)", "sequence": "\(parking.delivery.sequence)", "kind": "\(Self.parkedKind(parking.failure.kind))",
                    "reason": "\(parking.failure.reason)",
                ])
            try? runtime.reportStatus("applying")
        case .parked(let parking):
            logger.warning(
                "message parked: it cannot be applied here; the shard goes on",
                metadata: [
                    "stream": "\(parking.delivery.stream)", "sequence": "\(parking.delivery.sequence)",
                    "kind": "\(Self.parkedKind(parking.failure.kind))", "attempts": "\(parking.attempts)", "reason": "\(parking.failure.reason)",
                ])
            try? runtime.reportStatus("applying")
        case .parkedRetried(let applied, let remaining):
            logger.info("parked messages retried", metadata: ["applied": "\(applied)", "still_parked": "\(remaining)"])
        case .parkedRetryFailed(let reason):
            logger.error("cannot retry the parked messages; trying again at the next schema change or request", metadata: ["reason": "\(reason)"])
        case .recheckingGap(let gap):
            logger.warning(
                "delivered sequences jumped over messages the stream did not say are gone; consuming again from the cursor",
                metadata: ["stream": "\(gap.stream)", "missing": "\(gap.missing.lowerBound)…\(gap.missing.upperBound)"])
        case .messagesLost(let gap):
            logger.error(
                "changes are missing from the shard stream; snapshot.enabled = false, so they are lost on this node",
                metadata: ["stream": "\(gap.stream)", "detail": "\(gap)"])
        case .streamRestarted(let replacement):
            logger.error(
                "the shard stream was replaced; snapshot.enabled = false, so this node consumes the new stream from its start",
                metadata: ["stream": "\(replacement.stream)", "detail": "\(replacement)"])
            try? runtime.reportStatus("applying")
        }
    }
}

/// A delivery whose payload is not a change batch, or whose subject does not confirm its origin (`forged`).
struct DeliveryError: Error, CustomStringConvertible {
    var stream: String
    var sequence: UInt64
    var reason: String
    /// Undecodable; forged (its subject does not name its origin); or upstream's change of a table (or key
    /// column) this node lacks, parked until it exists (`ParkedUpstreamEvent`).
    var kind: ApplyFailure.Kind = .undecodable

    var description: String { "message \(sequence) of \(stream) \(reason)" }
}
