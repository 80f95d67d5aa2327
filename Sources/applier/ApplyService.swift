import ChangeEvents
import ChangeLog
import HarmonyConfig
import IPC
import Logging
import Signals
import SQLiteKit
import WorkerRuntime

#if canImport(Glibc)
import Glibc
#endif

/// Subscribes through the broker from the node's cursor and applies what arrives: each delivery in one
/// transaction with the cursor, then the acknowledgement and new credit. The node's own batches are skipped
/// (their stamps are already here) without a write: the cursor over them is stored with the next applied
/// batch or within `cursorInterval`, because every write of ours can make the application's writer wait for
/// the lock. The seq map file mirrors the stored cursor (never ahead of it), at most every
/// `seqMapInterval`. A delivery that cannot be applied is retried with backoff and reported; the cursor
/// never moves past it.
final class ApplyService: WorkerLoopHandler {
    private let runtime: WorkerRuntime
    private let config: Configuration
    private let logger: Logger
    private let database: SQLiteDatabase
    private let applier: ChangeApplier
    private let broker: BrokerChannel
    /// Applied through here; `storedCursor` is what the database has, `mirroredCursor` what the seq map has.
    private var cursor: [String: UInt64]
    private var storedCursor: [String: UInt64]
    private var mirroredCursor: [String: UInt64]
    private var cursorDueAt: Double?
    private var seqMapDueAt: Double?
    private var seqMapWrittenAt = 0.0
    /// Deliveries in arrival order; `endsFrame` marks the last one of a broker frame, which is worth one
    /// credit once applied.
    private var queue: [(delivery: DataMessage.Delivery, endsFrame: Bool)] = []
    private var retryAt: Double?
    private var backoff = 0.25
    private var lastError = ""
    private var oneAtATime = false
    private var warnedGaps: Set<String> = []

    private static let credit: UInt32 = 4
    private static let cursorInterval = 1.0
    private static let seqMapInterval = 0.1

    private var appliedEvents: Int64 = 0
    private var supersededEvents: Int64 = 0
    private var failures: Int64 = 0

    init(runtime: WorkerRuntime) throws {
        self.runtime = runtime
        config = runtime.configuration
        logger = runtime.logger
        let installation: ChangeLogInstallation
        (database, installation) = try ChangeLogInstaller.open(config.dbPath, node: config.nodeID)
        applier = ChangeApplier(database: database, catalog: installation.catalog)
        broker = BrokerChannel(runDirectory: runtime.runDirectory, role: .applier)
        cursor = try applier.storedCursor()
        storedCursor = cursor
        mirroredCursor = cursor
        do {
            if try SeqMapFile.read(config.seqMapPath) == nil {
                logger.info("no seq map at \(config.seqMapPath): consuming from the database's cursor \(cursor)")
            }
        } catch {
            logger.error("\(error); consuming from the database's cursor \(cursor)")
        }
        try SeqMapFile.write(cursor, to: config.seqMapPath)
        if config.replicate {
            try runtime.reportReady("applying changes from cursor \(cursor.isEmpty ? "start" : "\(cursor)")")
        } else {
            try runtime.reportReady("replicate=false: other nodes' changes are not applied")
        }
    }

    // MARK: WorkerLoopHandler

    var descriptors: [pollfd] { broker.descriptor.map { [$0] } ?? [] }

    var nextDeadline: Double? { [retryAt, cursorDueAt, seqMapDueAt].compactMap { $0 }.min() }

    var counters: [ControlMessage.Counter] {
        [.init("applied_events", appliedEvents), .init("superseded_events", supersededEvents), .init("apply_failures", failures),
         .init("queued_deliveries", Int64(queue.count))]
    }

    func handle(readable: [pollfd], now: Double) throws {
        let (messages, closed) = broker.receive()
        for message in messages {
            if case .deliver(let deliveries) = message {
                queue += deliveries.enumerated().map { ($0.element, $0.offset == deliveries.count - 1) }
            }
        }
        if let closed, closed.kind != .connectionClosed { logger.warning("broker connection: \(closed)") }
        if closed != nil { queue.removeAll() }
        try applyQueued()
    }

    func tick(now: Double) throws {
        guard config.replicate else { return }
        if broker.connectIfNeeded() {
            // What an old broker delivered but we did not apply will come again from our cursor.
            queue.removeAll()
            broker.send(.subscribe(cursor: cursor.map { DataMessage.Position(stream: $0.key, sequence: $0.value) }))
            broker.send(.credit(count: Self.credit))
        }
        try applyQueued()
        do {
            if let cursorDueAt, cursorDueAt <= now { try storeCursor() }
            if let seqMapDueAt, seqMapDueAt <= now { try mirrorCursor() }
        } catch {
            // Both are behind what was applied, which is safe; try again shortly.
            logger.error("\(error); trying again in 1 s")
            if cursorDueAt != nil { cursorDueAt = now + 1 }
            if seqMapDueAt != nil { seqMapDueAt = now + 1 }
        }
    }

    /// Stores the cursor and mirrors it now (also when the worker stops).
    func drain() throws {
        try storeCursor()
        try mirrorCursor()
    }

    // MARK: applying

    private func applyQueued() throws {
        if let retryAt, retryAt > monotonicSeconds() { return }
        retryAt = nil
        // Everything queued goes in one transaction (fewer commits when behind). When that fails, one
        // message at a time until the queue is empty, so the ones before a failing one still get through
        // and the error names the failing one.
        defer { if queue.isEmpty { oneAtATime = false } }
        while !queue.isEmpty {
            let group = oneAtATime ? 1 : queue.count
            do {
                try apply(queue.prefix(group))
                queue.removeFirst(group)
                backoff = 0.25
                if !lastError.isEmpty {
                    logger.info("applying again after: \(lastError)")
                    try? runtime.reportStatus("applying")
                    lastError = ""
                }
            } catch where group > 1 {
                oneAtATime = true
            } catch let gap as SequenceGap {
                try? runtime.reportStatus("needs a snapshot restore: \(gap)")
                throw WorkerExit.restoreNeeded("\(gap); only a snapshot restore at the node's start brings them back")
            } catch {
                failures += 1
                if "\(error)" != lastError {
                    lastError = "\(error)"
                    logger.error("\(error); retrying in \(backoff) s and every time after, until it applies")
                    try? runtime.reportStatus("cannot apply: \(error)")
                }
                retryAt = monotonicSeconds() + backoff
                backoff = min(backoff * 2, 30)
                return
            }
        }
    }

    private func apply(_ group: ArraySlice<(delivery: DataMessage.Delivery, endsFrame: Bool)>) throws {
        let deliveries = group.map(\.delivery)
        var events: [ChangeEvent] = []
        var reached = cursor
        for delivery in deliveries where delivery.sequence > (cursor[delivery.stream] ?? 0) {
            let position = reached[delivery.stream] ?? 0
            if delivery.sequence > position + 1 {
                // Stream sequences have no holes: the messages in between were discarded (max_entries).
                let missing = "messages \(position + 1)…\(delivery.sequence - 1) of \(delivery.stream) are gone from the stream before this node applied them"
                if config.snapshot.enabled { throw SequenceGap(description: missing) }
                if warnedGaps.insert(delivery.stream).inserted {
                    logger.error("\(missing); snapshot.enabled = false, so they are lost on this node")
                }
            }
            let batch: ChangeBatch
            do {
                batch = try ChangeBatch(decoding: delivery.payload)
            } catch {
                throw DeliveryError(description: "message \(delivery.sequence) of \(delivery.stream) cannot be decoded: \(error)")
            }
            if batch.origin != config.nodeID { events += batch.events }
            reached[delivery.stream] = max(reached[delivery.stream] ?? 0, delivery.sequence)
        }
        if events.isEmpty {
            if cursorDueAt == nil { cursorDueAt = monotonicSeconds() + Self.cursorInterval }
        } else {
            let outcome = try applier.apply(events, cursor: reached)
            appliedEvents += Int64(outcome.applied)
            supersededEvents += Int64(outcome.superseded)
            stored(reached)
        }
        cursor = reached
        // JetStream may forget what is acknowledged but not yet stored: a new subscription starts from the
        // stored cursor, not from the consumer's acknowledgements.
        for stream in Set(deliveries.map(\.stream)) {
            if let sequence = cursor[stream] { broker.send(.applied(.init(stream: stream, sequence: sequence))) }
        }
        let frames = group.count { $0.endsFrame }
        if frames > 0 { broker.send(.credit(count: UInt32(frames))) }
    }

    private func storeCursor() throws {
        guard cursor != storedCursor else { cursorDueAt = nil; return }
        _ = try applier.apply([], cursor: cursor)
        stored(cursor)
    }

    private func stored(_ reached: [String: UInt64]) {
        storedCursor = reached
        cursorDueAt = nil
        if seqMapDueAt == nil { seqMapDueAt = max(monotonicSeconds(), seqMapWrittenAt + Self.seqMapInterval) }
    }

    private func mirrorCursor() throws {
        guard storedCursor != mirroredCursor else { seqMapDueAt = nil; return }
        try SeqMapFile.write(storedCursor, to: config.seqMapPath)
        mirroredCursor = storedCursor
        seqMapWrittenAt = monotonicSeconds()
        seqMapDueAt = nil
    }
}

struct DeliveryError: Error, CustomStringConvertible {
    var description: String
}

struct SequenceGap: Error, CustomStringConvertible {
    var description: String
}
