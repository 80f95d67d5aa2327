import CapturePipeline
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

/// The capturer's I/O: installs the capture triggers, watches the database's files, carries out what the
/// `CapturePipeline` decides (looks at the database, batches to the broker, the watermark, cleanup) and
/// tells it what happened. Every decision about time is the pipeline's.
final class CaptureService: WorkerLoopHandler {
    private let runtime: WorkerRuntime
    private let config: Configuration
    private let logger: Logger
    private let database: SQLiteDatabase
    private var installation: ChangeLogInstallation
    private var reader: ChangeReader
    /// Writes the stamps of published entries into the row clocks, with the watermark (`PendingStamps`).
    private let stamps: StampMaterializer
    private let watcher: CommitWatcher
    private let broker: BrokerChannel
    private var pipeline: CapturePipeline
    private var dataVersion: Int64 = -1
    private var schemaVersion: Int64
    /// Reads the schema while `database` waits for the write lock (a reader never waits in WAL mode).
    private let schemaReader: SQLiteDatabase
    /// Columns seen since the last installation, while waiting for the lock or at a look: recorded, in
    /// order, by the next installation (`ColumnHistory`).
    private var noticed: [ColumnHistory.Look] = []
    private let cutting = MessageCutting(maximumBytes: MessageCutting.eventBytes(inMessagesOf: DataMessage.maximumPublishBytes))
    /// Rows refused for their size since the capturer started.
    private var oversizedRows: Int64 = 0
    /// The watermark at start: rows published since are the watermark's advance (one change-log entry per row).
    private let startWatermark: Int64
    private var lastPublishedAt: Int64 = 0
    private var observations = ObservationAccumulator()
    /// Held while this worker runs: no snapshot restore runs under it (`RestoreLock`).
    private let restoreLock: RestoreLock
    /// Local writes clamped to the node's clock (any process's materializer, or this reader) before this
    /// worker started, and as last logged (`PendingStamps.clampedCount`).
    private var clampedAtStart: Int64 = 0
    private var clampedLogged: Int64 = 0
    private var clampLog = RateLimit(interval: 10_000)

    init(runtime: WorkerRuntime) throws {
        self.runtime = runtime
        config = runtime.configuration
        logger = runtime.logger
        restoreLock = try RestoreLock.holdWhileRunning(runDirectory: runtime.runDirectory)
        do {
            (database, installation) = try ChangeLogInstaller.open(
                config.dbPath, node: config.nodeID, upstreamSeqMap: config.seqMapPath, whileWaiting: runtime.whileWaitingForDatabase)
        } catch {
            let message = ChangeLogInstaller.cannotStart(error, path: config.dbPath)
            throw UpstreamTakeover.isRefusal(error) ? WorkerExit.refused(message) : WorkerExit.failed(message)
        }
        // The bound on the application's clock, for every materializer of this database (the applier's too).
        try PendingStamps.setMaxClockOffset(UInt64(config.maxClockOffset), in: database)
        clampedAtStart = try PendingStamps.clampedCount(in: database)
        reader = try ChangeReader(database: database, installation: installation)
        reader.clockBound = ClockBound(maxOffsetMilliseconds: UInt64(config.maxClockOffset))
        stamps = StampMaterializer(database: database)
        watcher = try CommitWatcher(databasePath: config.dbPath)
        broker = BrokerChannel(runDirectory: runtime.runDirectory, role: .capturer)
        schemaVersion = installation.schemaVersion
        schemaReader = try SQLiteDatabase(readOnlyPath: config.dbPath)
        var settings = CapturePipeline.Settings()
        settings.publish = config.publish
        settings.pollInterval = Double(config.pollingInterval) / 1000
        settings.cleanupInterval = Double(max(config.cleanupInterval, 100)) / 1000
        settings.firstBatchID = UInt64(max(0, wallClockNanoseconds()))
        settings.endBatching(atScanLimit: Int64(config.scanMaxChanges))
        pipeline = CapturePipeline(settings: settings, watermark: try PublishWatermark.read(database), now: monotonicSeconds())
        startWatermark = pipeline.watermark
        // Waiting for the write lock (the watermark, cleanup, an installation) can take a while when the
        // application commits back to back; a column it adds and drops again meanwhile must still be seen.
        // An application transaction can hold the lock for as long as it likes: the wait keeps the heartbeats
        // going and says what it waits for (`WorkerRuntime.whileWaitingForDatabase`), so it has no timeout.
        database.waitWhenBusy(timeoutMilliseconds: nil) { [weak self, runtime] in
            self?.noticeSchemaChange()
            return runtime.whileWaitingForDatabase()
        }
        report(installation)
        try runtime.reportReady(
            "capturing \(installation.catalog.replicated.count) table(s)" + (config.publish ? "" : "; publish=false: changes are captured, never sent"))
    }

    private func report(_ installation: ChangeLogInstallation) {
        for (name, reason) in installation.catalog.refused where !reason.hasPrefix("shadow") {
            logger.warning("not replicating table", metadata: ["table": "\(name)", "reason": "\(reason)"])
        }
        for note in installation.notes { logger.warning("the capture installation has a note", metadata: ["note": "\(note)"]) }
        logger.info(
            "capturing",
            metadata: [
                "tables": "\(installation.catalog.replicated.map(\.name).joined(separator: ", "))",
                "schema": "\(installation.schemaHash.prefix(16))",
            ])
    }

    // MARK: WorkerLoopHandler

    var descriptors: [pollfd] {
        var list = [pollfd(fd: watcher.fd, events: Int16(POLLIN), revents: 0)]
        if let channel = broker.descriptor { list.append(channel) }
        return list
    }

    var nextDeadline: Double? { pipeline.nextDeadline }

    /// Asked once per heartbeat.
    var counters: [ControlMessage.Counter] {
        let started = monotonicSeconds()
        let pending = (try? PublishWatermark.lastQueuedID(in: database)).map { max(0, $0 - pipeline.watermark) } ?? 0
        observations.record(.countChanges, monotonicSeconds() - started)
        return [
            .init(.published, pipeline.publishedBatches), .init(.pendingPublish, pending),
            .init(.batchesInFlight, Int64(pipeline.inFlight.count)), .init(.oversizedRows, oversizedRows),
            .init(.publishedRows, max(0, pipeline.watermark - startWatermark)), .init(.lastPublishedUnixMs, lastPublishedAt),
            .init(.tablesTracked, Int64(installation.catalog.replicated.count)), .init(.clampedLocalStamps, clampedLocalStamps()),
        ]
    }

    /// Local writes clamped since this worker started; logs (at most every 10 s) when there are new ones.
    private func clampedLocalStamps() -> Int64 {
        guard let total = try? PendingStamps.clampedCount(in: database) else { return clampedLogged }
        let count = max(0, total - clampedAtStart)
        if count > clampedLogged, let held = clampLog.allow(now: Int64(monotonicSeconds() * 1000)) {
            logger.warning(
                "local writes stamped by the application's clock beyond the node's clock plus max_clock_offset: stamped with the node's clock",
                metadata: [
                    "clamped": "\(count - clampedLogged)", "clamped_since_start": "\(count)",
                    "max_clock_offset_ms": "\(config.maxClockOffset)", "reports_not_logged": "\(held)",
                ])
            clampedLogged = count
        }
        return count
    }

    func takeObservations() -> [Observations] { observations.take() }

    func handle(readable: [pollfd], now: Double) throws {
        for descriptor in readable {
            if descriptor.fd == watcher.fd {
                if watcher.drain() { pipeline.databaseTouched(now: now) }
            } else {
                receiveFromBroker(now: now)
            }
        }
        try tick(now: now)
    }

    func tick(now: Double) throws {
        if broker.connectIfNeeded() { try perform(pipeline.brokerConnected(now: now), now: now) }
        try perform(pipeline.tick(now: now), now: now)
    }

    func drain() throws {
        if let watermark = pipeline.watermarkToStore {
            try storeWatermark(watermark)
            pipeline.watermarkStored(watermark)
        }
    }

    // MARK: actions

    private func perform(_ actions: [CapturePipeline.Action], now: Double) throws {
        for action in actions {
            switch action {
            case .look(let readThrough, let evenIfUnchanged):
                try perform(pipeline.looked(try look(after: readThrough, evenIfUnchanged: evenIfUnchanged), now: now), now: now)
            case .publish(let batch):
                if !broker.send(.publish(batch)) { pipeline.brokerDisconnected() }
            case .storeWatermark(let id):
                do {
                    try storeWatermark(id)
                    pipeline.watermarkStored(id)
                    lastPublishedAt = wallClockMilliseconds()
                } catch {
                    logger.error("cannot store the publish watermark; trying again in 1 s", metadata: ["error": "\(error)"])
                    pipeline.watermarkStoreFailed(now: now)
                }
            case .checkSchema:
                try watchSchema(heldBack: true)
            case .removePublished:
                // Housekeeping: a failure (a full disk: SQLite error 13) is left to the next round. Stopping for
                // it made the capturer crash-loop while the disk was full, and stop the node past restart_intensity.
                do {
                    let removed = try database.transaction { () throws(SQLiteError) -> Int in
                        try stamps.materialize(known: reader.stamps, onlyKnown: true)
                        return try PublishWatermark.removePublished(from: database)
                    }
                    if removed > 0 { logger.debug("removed published change-log entries", metadata: ["entries": "\(removed)"]) }
                } catch {
                    logger.warning("cannot remove published change-log entries now; trying again later", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// Stores the watermark, stamping the row clocks of what is pending in the same transaction: the
    /// capturer's writes are the ones that keep the row clocks up to date on a node that only writes.
    private func storeWatermark(_ id: Int64) throws(SQLiteError) {
        try database.transaction { () throws(SQLiteError) in
            try stamps.materialize(known: reader.stamps, onlyKnown: true)
            try PublishWatermark.write(id, to: database)
        }
    }

    /// A table was created or altered: installs triggers for it without a restart, and records its columns
    /// (`ColumnHistory`). `heldBack`: publishing waits (the pipeline's `checkSchema`), said in the log.
    private func watchSchema(heldBack: Bool) throws {
        let schema = try database.scalarInteger("PRAGMA schema_version")
        guard schema != schemaVersion else { return }
        // The columns now, before waiting for the write lock: the application may drop one meanwhile.
        noticed.append(try ColumnHistory.look(in: database))
        installation = try ChangeLogInstaller.install(in: database, node: config.nodeID, seen: { noticed })
        noticed.removeAll()
        reader = try ChangeReader(database: database, installation: installation)
        reader.clockBound = ClockBound(maxOffsetMilliseconds: UInt64(config.maxClockOffset))
        // The version the installation saw, not one read now: a change committed since is installed next time.
        schemaVersion = installation.schemaVersion
        if heldBack {
            logger.info("the schema changed while publishing waits: triggers reinstalled now", metadata: ["batches_in_flight": "\(pipeline.inFlight.count)"])
        }
        report(installation)
    }

    /// Called between tries while `database` waits for a lock: a schema version not seen yet is looked at on
    /// the reader connection. A failure is left to the next look.
    private func noticeSchemaChange() {
        guard let version = try? schemaReader.scalarInteger("PRAGMA schema_version"),
            version != schemaVersion, version != noticed.last?.schemaVersion,
            let look = try? ColumnHistory.look(in: schemaReader)
        else { return }
        noticed.append(look)
    }

    private func look(after readThrough: Int64, evenIfUnchanged: Bool) throws -> CapturePipeline.LookOutcome {
        // Our own writes wake the watcher too; data_version only moves for other connections' commits.
        let version = try database.scalarInteger("PRAGMA data_version")
        guard version != dataVersion || evenIfUnchanged else { return .unchanged }
        dataVersion = version
        var read: ChangeReader.Pending
        repeat {
            // The reader checks the schema again in its read's snapshot: a change committed meanwhile is
            // installed and the read made again.
            try watchSchema(heldBack: false)
            let scanStarted = monotonicSeconds()
            read = try reader.pending(after: readThrough, limit: Int(config.scanMaxChanges), schemaVersion: schemaVersion)
            observations.record(.scanChanges, monotonicSeconds() - scanStarted)
        } while read.schemaChanged
        guard let through = read.throughID else { return .nothingNew }
        if read.skipped > 0 { logger.debug("skipped change-log entries of tables no longer replicated", metadata: ["entries": "\(read.skipped)"]) }
        return .read(throughID: through, batches: config.publish ? batches(read.events) : [])
    }

    /// Splits `events` into per-shard batches (`MessageCutting`), in change-log order per shard. A row too
    /// large for any message is refused here: logged once with its table and key, counted, and left behind,
    /// so the watermark moves over it and the rows after it flow on.
    private func batches(_ events: [ChangeEvent]) -> [CapturePipeline.UnnumberedBatch] {
        var byShard: [UInt64: [ChangeEvent]] = [:]
        for event in events {
            byShard[Shard.of(table: event.table, key: event.key, shards: config.replicationLog.shards), default: []].append(event)
        }
        var batches: [CapturePipeline.UnnumberedBatch] = []
        for shard in byShard.keys.sorted() {
            let cut = cutting.cut(byShard[shard]!)
            for event in cut.refused { refuse(event) }
            for group in cut.messages {
                guard let first = group.first, let last = group.last else { continue }
                let payload = ChangeBatch(origin: config.nodeID, schemaHash: installation.schemaHash, events: group)
                    .encoded(compress: config.replicationLog.compress)
                let messageID = MessageIdentity(
                    node: config.nodeID, incarnation: installation.incarnation, shard: shard, firstChange: first.changeID, lastChange: last.changeID
                ).text
                batches.append(.init(shard: UInt32(shard), messageID: messageID, payload: payload))
            }
        }
        return batches
    }

    private func refuse(_ event: ChangeEvent) {
        oversizedRows += 1
        let key = zip(event.columns, event.key).map { "\($0)=\(String(describing: $1).prefix(80))" }.joined(separator: ", ")
        logger.error(
            "row too large to replicate; not sent (the other nodes keep their version of it)",
            metadata: [
                "table": "\(event.table)", "key": "\(key)", "change_id": "\(event.changeID)",
                "encoded_bytes": "\(event.encodedSize)", "limit_bytes": "\(cutting.maximumBytes)",
            ])
    }

    private func receiveFromBroker(now: Double) {
        let (messages, closed) = broker.receive()
        for message in messages {
            switch message {
            case .published(let id, _, _):
                pipeline.published(id, now: now)
            case .publishFailed(let id, let reason):
                if pipeline.publishFailed(id, now: now) {
                    logger.warning("publish not acknowledged; retrying in 1 s", metadata: ["batch": "\(id)", "error": "\(reason)"])
                }
            default:
                logger.warning("unexpected message from the broker", metadata: ["message": "\(message)"])
            }
        }
        if closed != nil || !broker.isConnected { pipeline.brokerDisconnected() }
        if let closed, closed.kind != .connectionClosed { logger.warning("broker connection closed", metadata: ["error": "\(closed)"]) }
    }
}

/// Nanoseconds on the realtime clock (batch ids start here, so they do not repeat across restarts).
private func wallClockNanoseconds() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
}
