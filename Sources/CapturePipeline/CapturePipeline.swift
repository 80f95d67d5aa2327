import IPC

/// The capturer's decisions, with no I/O: when to look at the database, what to publish and publish again,
/// and how far the publish watermark may move. Feed it events with the loop's `now`; carry out the actions
/// it returns; ask `nextDeadline` before waiting. Every deadline is a value in its state.
///
/// **Noticing commits.** A file event (inotify on the database and its WAL) can arrive while the
/// application's commit is not visible yet: the WAL frames are written first, and the commit becomes
/// visible through the mmap'ed `-shm` index, which makes no event; and one event can stand for several
/// commits. So after every event the database is looked at again on a short backoff (`recheckDelays`,
/// ~0.25 s in all) even after a look found something; a look that sees nothing new costs one
/// `PRAGMA data_version`. A slow safety look (`safetyLookInterval`)
/// bounds the lag of anything the events could still miss. Idle, with no events: one look per safety
/// interval and nothing else.
///
/// **Watching the schema.** A look also notices a schema change (and reinstalls the triggers, recording the
/// columns in `__harmonylite___columns`). While looks are held back (the window is full, no broker), the
/// schema is still checked on the same schedule after every event (`checkSchema`): a column added and
/// dropped again before the next look would otherwise leave no trace, and other nodes' changes that still
/// carry it would wait parked forever for a column this node never has again.
///
/// **Publishing.** Changes are read in change-log order and sent as batches, at most `window` unconfirmed.
/// A read is a chunk of the log; the watermark moves over a chunk only once every batch of it and of every
/// chunk before it is confirmed, so a NATS outage, a broker restart or a crash leaves changes pending,
/// never lost. The watermark is stored at most every `watermarkInterval`: each write of ours takes the
/// database's write lock, which the application's writer may be waiting for.
public struct CapturePipeline: Sendable {
    public struct Settings: Sendable {
        /// Unconfirmed batches at most.
        public var window = 16
        /// Looks at the database no more often than this: under a stream of small commits one look then
        /// reads many (one message, one apply on every node) instead of one per commit.
        public var lookInterval = 0.001
        /// Under a stream of small commits (a look read `batchingReads` entries: thousands of rows per second
        /// of single-row transactions), looks no more often than this instead: each message then carries a
        /// hundred rows or more rather than a few dozen, and every process on its way (nats-server most: its
        /// cost is per message) does a quarter of the work per row. A read of more (a backlog) or fewer (a
        /// trickle, where latency matters) keeps `lookInterval`.
        public var batchingLookInterval = 0.004
        public var batchingReads: Range<Int64> = 16..<256

        /// Ends `batchingReads` below `scanLimit` (`scan_max_changes`, the most one look reads): a full read is a
        /// backlog, read on at once however small the setting.
        public mutating func endBatching(atScanLimit scanLimit: Int64) {
            batchingReads = batchingReads.lowerBound..<max(batchingReads.lowerBound, min(batchingReads.upperBound, scanLimit))
        }
        /// After a file event, look again after each of these delays (cumulative) until a look sees a commit.
        public var recheckDelays: [Double] = [0.000_25, 0.000_5, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128]
        /// A look at this interval whatever the events said (bounds the lag of a commit no event announced).
        public var safetyLookInterval = 1.0
        /// HarmonyLite's `polling_interval` (seconds; 0: none): a look at this interval too.
        public var pollInterval = 0.0
        public var watermarkInterval = 0.1
        public var watermarkRetryDelay = 1.0
        public var publishRetryDelay = 1.0
        /// Removing published change-log entries (`cleanup_interval`).
        public var cleanupInterval = 5.0
        /// `publish = false`: changes are captured and the watermark moves, nothing is sent.
        public var publish = true
        /// The first batch id. Ids must not repeat across capturer incarnations (a broker may still hold an
        /// old incarnation's ids), so the glue starts them from the wall clock in nanoseconds.
        public var firstBatchID: UInt64 = 1

        public init() {}
    }

    public enum Action: Equatable, Sendable {
        /// Look at the database: read the change log after `readThrough` if `PRAGMA data_version` moved since
        /// the last look, or in any case when `evenIfUnchanged` (the last read may have stopped at its
        /// limit). Report with `looked`.
        case look(readThrough: Int64, evenIfUnchanged: Bool)
        /// Send (or send again) a batch to the broker.
        case publish(DataMessage.Publish)
        /// Store the watermark in the database; report with `watermarkStored` or `watermarkStoreFailed`.
        case storeWatermark(Int64)
        /// Delete published change-log entries.
        case removePublished
        /// Read `PRAGMA schema_version` and, if the schema changed, reinstall the triggers (and record the
        /// columns) now; read nothing else. Asked for while looks are held back.
        case checkSchema
    }

    /// What a look found.
    public enum LookOutcome: Equatable, Sendable {
        /// `data_version` had not moved (and the look was not forced): no commit since the last look.
        case unchanged
        /// A commit was seen, but the change log has nothing after `readThrough` for us.
        case nothingNew
        /// Change-log entries after `readThrough` up to `throughID`, as batches to publish (without their ids:
        /// the pipeline numbers them). Empty when every entry was merged or skipped.
        case read(throughID: Int64, batches: [UnnumberedBatch])
    }

    public struct UnnumberedBatch: Equatable, Sendable {
        public var shard: UInt32
        public var messageID: String
        public var payload: [UInt8]

        public init(shard: UInt32, messageID: String, payload: [UInt8]) {
            self.shard = shard
            self.messageID = messageID
            self.payload = payload
        }
    }

    /// One read of the change log: the batches it became, and the log id it covers up to.
    struct Chunk: Equatable, Sendable {
        var throughID: Int64
        var unconfirmed: Set<UInt64>
    }

    public let settings: Settings

    // Looking.
    private(set) var lookDueAt: Double?
    private var lastLookAt = -Double.infinity
    /// How many queue entries the last look that read something covered.
    private var lastReadEntries: Int64 = 0
    private var recheckStep: Int?
    private var moreToRead = false
    private var nextSafetyLook: Double
    private var nextPoll: Double?
    /// The next schema check while looks are held back, and how far along its recheck delays it is.
    private(set) var schemaCheckDueAt: Double?
    private var schemaRecheckStep: Int?

    // Publishing.
    public private(set) var readThrough: Int64
    private(set) var chunks: [Chunk] = []
    public private(set) var inFlight: [UInt64: DataMessage.Publish] = [:]
    private var retryAt: [UInt64: Double] = [:]
    private var nextBatchID: UInt64
    public private(set) var brokerConnected = false

    // The watermark.
    public private(set) var watermark: Int64
    public private(set) var storedWatermark: Int64
    private(set) var watermarkDueAt: Double?
    private var nextCleanup: Double

    public private(set) var publishedBatches: Int64 = 0

    /// `watermark`: what the database says JetStream has acknowledged (the change log is read after it).
    public init(settings: Settings, watermark: Int64, now: Double) {
        self.settings = settings
        self.watermark = watermark
        storedWatermark = watermark
        readThrough = watermark
        nextBatchID = settings.firstBatchID
        nextSafetyLook = now
        nextCleanup = now + settings.cleanupInterval
        if settings.pollInterval > 0 { nextPoll = now + settings.pollInterval }
        // Changes may have been committed while no capturer ran.
        lookDueAt = now
        moreToRead = true
    }

    /// Room for another read's batches.
    var canSendMore: Bool { !settings.publish || (brokerConnected && inFlight.count < settings.window) }

    /// When `tick` has work next; nil: only an event brings any.
    public var nextDeadline: Double? {
        var deadline = min(watermarkDueAt ?? .infinity, nextCleanup)
        if canSendMore {
            deadline = min(deadline, lookDueAt ?? .infinity, nextSafetyLook, nextPoll ?? .infinity)
        } else {
            deadline = min(deadline, schemaCheckDueAt ?? .infinity)
        }
        if settings.publish && brokerConnected { deadline = min(deadline, retryAt.values.min() ?? .infinity) }
        return deadline.isFinite ? deadline : nil
    }

    // MARK: events

    /// A file event concerning the database or its WAL: a commit may be on its way.
    public mutating func databaseTouched(now: Double) {
        recheckStep = 0
        scheduleLook(at: now)
        schemaRecheckStep = 0
        schemaCheckDueAt = now
    }

    /// Timed work: looks, publish retries, the watermark, cleanup.
    public mutating func tick(now: Double) -> [Action] {
        var actions: [Action] = []
        if brokerConnected {
            for (id, at) in retryAt.sorted(by: { $0.key < $1.key }) where at <= now {
                retryAt[id] = nil
                if let batch = inFlight[id] { actions.append(.publish(batch)) }
            }
        }
        if now >= nextSafetyLook {
            nextSafetyLook = now + settings.safetyLookInterval
            scheduleLook(at: now)
        }
        if let poll = nextPoll, now >= poll {
            nextPoll = now + settings.pollInterval
            scheduleLook(at: now)
        }
        if canSendMore, let due = lookDueAt, now >= due {
            lookDueAt = nil
            lastLookAt = now
            actions.append(.look(readThrough: readThrough, evenIfUnchanged: moreToRead))
        }
        if let due = schemaCheckDueAt, now >= due {
            // A look checks the schema too: only a held-back one needs the check on its own.
            if !canSendMore { actions.append(.checkSchema) }
            scheduleSchemaRecheck(now: now)
        }
        if let due = watermarkDueAt, now >= due {
            if watermark != storedWatermark {
                actions.append(.storeWatermark(watermark))
                watermarkDueAt = now + settings.watermarkRetryDelay  // until reported stored
            } else {
                watermarkDueAt = nil
            }
        }
        if now >= nextCleanup {
            nextCleanup = now + settings.cleanupInterval
            actions.append(.removePublished)
        }
        return actions
    }

    /// The result of a `look`. Batches read are numbered and returned as `publish` actions.
    public mutating func looked(_ outcome: LookOutcome, now: Double) -> [Action] {
        switch outcome {
        case .unchanged, .nothingNew:
            // Not "done": one event can stand for several commits, the last of them not visible yet.
            moreToRead = false
            scheduleRecheck(now: now)
            return []
        case .read(let throughID, let unnumbered):
            // There may be more than one read's worth: read again as soon as there is room.
            moreToRead = true
            lastReadEntries = max(0, throughID - readThrough)
            scheduleLook(at: now)
            readThrough = max(readThrough, throughID)
            guard settings.publish else {
                advanceWatermark(to: throughID, now: now)
                return []
            }
            var ids: Set<UInt64> = []
            var actions: [Action] = []
            for batch in unnumbered {
                let publish = DataMessage.Publish(batchID: nextBatchID, shard: batch.shard, messageID: batch.messageID, payload: batch.payload)
                nextBatchID &+= 1
                ids.insert(publish.batchID)
                inFlight[publish.batchID] = publish
                actions.append(.publish(publish))
            }
            chunks.append(Chunk(throughID: throughID, unconfirmed: ids))
            settleChunks(now: now)
            return actions
        }
    }

    /// A connection to the broker was made: a new broker knows nothing of what an old one had in flight.
    public mutating func brokerConnected(now: Double) -> [Action] {
        brokerConnected = true
        retryAt.removeAll()
        return inFlight.keys.sorted().compactMap { inFlight[$0].map(Action.publish) }
    }

    public mutating func brokerDisconnected() {
        brokerConnected = false
    }

    /// JetStream stored the batch `id`.
    public mutating func published(_ id: UInt64, now: Double) {
        guard inFlight.removeValue(forKey: id) != nil else { return }
        retryAt[id] = nil
        publishedBatches += 1
        for index in chunks.indices { chunks[index].unconfirmed.remove(id) }
        settleChunks(now: now)
        // A full window may have held a look back.
        if moreToRead { scheduleLook(at: now) }
    }

    /// The batch `id` was not acknowledged: it stays in flight and is sent again after a delay.
    /// Returns false when the id is not in flight (a late answer about a batch already confirmed).
    @discardableResult
    public mutating func publishFailed(_ id: UInt64, now: Double) -> Bool {
        guard inFlight[id] != nil else { return false }
        retryAt[id] = now + settings.publishRetryDelay
        return true
    }

    public mutating func watermarkStored(_ id: Int64) {
        storedWatermark = max(storedWatermark, id)
        if storedWatermark == watermark { watermarkDueAt = nil }
    }

    public mutating func watermarkStoreFailed(now: Double) {
        // The stored watermark stays behind, which is safe (those changes would be sent again).
        watermarkDueAt = now + settings.watermarkRetryDelay
    }

    /// Before the worker stops: the watermark to store now, if it moved.
    public var watermarkToStore: Int64? { watermark != storedWatermark ? watermark : nil }

    // MARK: helpers

    private mutating func scheduleLook(at now: Double) {
        let interval = settings.batchingReads.contains(lastReadEntries) ? settings.batchingLookInterval : settings.lookInterval
        let at = max(now, lastLookAt + interval)
        lookDueAt = min(lookDueAt ?? .infinity, at)
    }

    private mutating func scheduleRecheck(now: Double) {
        guard let step = recheckStep else { return }
        guard step < settings.recheckDelays.count else {
            recheckStep = nil
            return
        }
        recheckStep = step + 1
        lookDueAt = min(lookDueAt ?? .infinity, now + settings.recheckDelays[step])
    }

    /// The event's commit may become visible only later (see "Noticing commits"): checked again after
    /// each recheck delay.
    private mutating func scheduleSchemaRecheck(now: Double) {
        guard let step = schemaRecheckStep, step < settings.recheckDelays.count else {
            schemaRecheckStep = nil
            schemaCheckDueAt = nil
            return
        }
        schemaRecheckStep = step + 1
        schemaCheckDueAt = now + settings.recheckDelays[step]
    }

    private mutating func settleChunks(now: Double) {
        while let first = chunks.first, first.unconfirmed.isEmpty {
            chunks.removeFirst()
            advanceWatermark(to: first.throughID, now: now)
        }
    }

    private mutating func advanceWatermark(to id: Int64, now: Double) {
        watermark = max(watermark, id)
        if watermarkDueAt == nil { watermarkDueAt = now + settings.watermarkInterval }
    }
}
