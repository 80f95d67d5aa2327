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

/// Installs the capture triggers, reads the change log when the database changes (inotify; the
/// `polling_interval` poll only as a fallback), and publishes the changes through the broker in change-log
/// order: batches per shard, at most `window` unconfirmed. The publish watermark only advances over a
/// prefix of the log whose every batch JetStream acknowledged, so a NATS outage, a broker restart or a crash
/// leaves changes pending, never lost; a resent batch keeps its Nats-Msg-Id, so JetStream stores it once.
/// The watermark is stored at most every `watermarkInterval`: every write of ours takes the database's write
/// lock, and an application that finds it taken sleeps in its busy handler (1 ms at least).
final class CaptureService: WorkerLoopHandler {
    private let runtime: WorkerRuntime
    private let config: Configuration
    private let logger: Logger
    private let database: SQLiteDatabase
    private var installation: ChangeLogInstallation
    private var reader: ChangeReader
    private let watcher: CommitWatcher
    private let broker: BrokerChannel

    /// One read of the change log: the batches it became, and the log id they cover up to.
    private struct Chunk {
        var throughID: Int64
        var unconfirmed: Set<UInt64>
    }

    /// Confirmed through here; `storedWatermark` is what the database has.
    private var watermark: Int64
    private var storedWatermark: Int64
    private var watermarkDueAt: Double?
    /// Change-log ids read and handed to the broker, up to here.
    private var readThrough: Int64
    private var chunks: [Chunk] = []
    private var batches: [UInt64: DataMessage.Publish] = [:]
    private var retryAt: [UInt64: Double] = [:]
    private var nextBatchID: UInt64 = 1
    private var dataVersion: Int64 = -1
    private var schemaVersion: Int64
    private var changesMayBeWaiting = true
    /// Looks at the database no more often than every `lookInterval`: under a stream of small commits one
    /// look then reads many, instead of one look (and one message, one apply on every node) per commit.
    private var nextLook = 0.0
    private var nextPoll: Double?
    private var nextCleanup: Double

    private static let window = 16
    private static let maximumBatchBytes = 256 * 1024
    private static let watermarkInterval = 0.1
    private static let lookInterval = 0.001

    private var published: Int64 = 0
    private var pending: Int64 = 0

    init(runtime: WorkerRuntime) throws {
        self.runtime = runtime
        config = runtime.configuration
        logger = runtime.logger
        (database, installation) = try ChangeLogInstaller.open(config.dbPath, node: config.nodeID)
        reader = try ChangeReader(database: database, installation: installation)
        watcher = try CommitWatcher(databasePath: config.dbPath)
        broker = BrokerChannel(runDirectory: runtime.runDirectory, role: .capturer)
        watermark = try PublishWatermark.read(database)
        storedWatermark = watermark
        readThrough = watermark
        schemaVersion = try database.scalarInteger("PRAGMA schema_version")
        nextCleanup = monotonicSeconds() + Double(config.cleanupInterval) / 1000
        report(installation)
        try runtime.reportReady("capturing \(installation.catalog.replicated.count) table(s)" + (config.publish ? "" : "; publish=false: changes are captured, never sent"))
    }

    private func report(_ installation: ChangeLogInstallation) {
        for (name, reason) in installation.catalog.refused where !reason.hasPrefix("shadow") {
            logger.warning("not replicating table \(name): \(reason)")
        }
        for note in installation.notes { logger.warning("\(note)") }
        logger.info("capturing \(installation.catalog.replicated.map(\.name).joined(separator: ", ")) (schema \(installation.schemaHash.prefix(16)))")
    }

    // MARK: WorkerLoopHandler

    var descriptors: [pollfd] {
        var list = [pollfd(fd: watcher.fd, events: Int16(POLLIN), revents: 0)]
        if let channel = broker.descriptor { list.append(channel) }
        return list
    }

    var nextDeadline: Double? {
        var deadlines = Array(retryAt.values)
        if changesMayBeWaiting && canSendMore { deadlines.append(max(nextLook, monotonicSeconds())) }
        if let nextPoll { deadlines.append(nextPoll) }
        if let watermarkDueAt { deadlines.append(watermarkDueAt) }
        deadlines.append(nextCleanup)
        return deadlines.min()
    }

    var counters: [ControlMessage.Counter] {
        [.init("published", published), .init("pending_publish", pending), .init("batches_in_flight", Int64(batches.count))]
    }

    func handle(readable: [pollfd], now: Double) throws {
        for descriptor in readable {
            if descriptor.fd == watcher.fd {
                if watcher.drain() { changesMayBeWaiting = true }
            } else {
                receiveFromBroker()
            }
        }
        try work(now: now)
    }

    func tick(now: Double) throws {
        try work(now: now)
        pending = try PublishWatermark.pendingCount(in: database)
    }

    // MARK: the work

    private var canSendMore: Bool { !config.publish || (broker.isConnected && batches.count < Self.window) }

    private func work(now: Double) throws {
        if broker.connectIfNeeded() {
            // A new broker knows nothing of what the old one had in flight: send it all again.
            for id in batches.keys { retryAt[id] = now }
        }
        for (id, at) in retryAt where at <= now {
            retryAt[id] = nil
            if let batch = batches[id] { broker.send(.publish(batch)) }
        }
        if config.pollingInterval > 0, nextPoll.map({ $0 <= now }) ?? true {
            changesMayBeWaiting = true
            nextPoll = now + Double(config.pollingInterval) / 1000
        }
        if changesMayBeWaiting && now >= nextLook {
            nextLook = now + Self.lookInterval
            try readChanges()
        }
        if let watermarkDueAt, watermarkDueAt <= now {
            do {
                try storeWatermark()
            } catch {
                // The stored watermark stays behind, which is safe (those changes would be sent again).
                logger.error("cannot store the publish watermark: \(error); trying again in 1 s")
                self.watermarkDueAt = now + 1
            }
        }
        if now >= nextCleanup {
            let removed = try PublishWatermark.removePublished(from: database)
            if removed > 0 { logger.debug("removed \(removed) published change-log entries") }
            nextCleanup = now + Double(max(config.cleanupInterval, 100)) / 1000
        }
    }

    private func readChanges() throws {
        let version = try database.scalarInteger("PRAGMA data_version")
        let schema = try database.scalarInteger("PRAGMA schema_version")
        if schema != schemaVersion {
            // A table was created or altered: install triggers for it without a restart.
            schemaVersion = schema
            installation = try ChangeLogInstaller.install(in: database, node: config.nodeID)
            reader = try ChangeReader(database: database, installation: installation)
            schemaVersion = try database.scalarInteger("PRAGMA schema_version")
            report(installation)
        }
        // Our own watermark writes wake the watcher too; data_version only moves for other connections' commits.
        if version == dataVersion {
            changesMayBeWaiting = false
            return
        }
        while canSendMore {
            let read = try reader.pending(after: readThrough, limit: Int(config.scanMaxChanges))
            guard let through = read.throughID else {
                changesMayBeWaiting = false
                dataVersion = version
                break
            }
            if read.skipped > 0 { logger.debug("skipped \(read.skipped) change-log entries of tables no longer replicated") }
            readThrough = through
            if !config.publish {
                advance(to: through)
                continue
            }
            chunks.append(Chunk(throughID: through, unconfirmed: Set(send(read.events))))
            settleChunks()
        }
    }

    /// Splits `events` into per-shard batches and sends them; returns their ids.
    private func send(_ events: [ChangeEvent]) -> [UInt64] {
        var byShard: [UInt64: [ChangeEvent]] = [:]
        for event in events {
            byShard[Shard.of(table: event.table, key: event.key, shards: config.replicationLog.shards), default: []].append(event)
        }
        var ids: [UInt64] = []
        for shard in byShard.keys.sorted() {
            var group: [ChangeEvent] = []
            var size = 0
            func flush() {
                guard let first = group.first, let last = group.last else { return }
                let payload = ChangeBatch(origin: config.nodeID, schemaHash: installation.schemaHash, events: group)
                    .encoded(compress: config.replicationLog.compress)
                let id = nextBatchID
                nextBatchID += 1
                let messageID = "\(config.nodeID).\(installation.incarnation).\(shard).\(first.changeID)-\(last.changeID)"
                let batch = DataMessage.Publish(batchID: id, shard: UInt32(shard), messageID: messageID, payload: payload)
                batches[id] = batch
                broker.send(.publish(batch))
                ids.append(id)
                group.removeAll()
                size = 0
            }
            for event in byShard[shard]! {
                group.append(event)
                size += event.values.reduce(64) { $0 + $1.byteCount }
                if size >= Self.maximumBatchBytes { flush() }
            }
            flush()
        }
        return ids
    }

    private func receiveFromBroker() {
        let (messages, closed) = broker.receive()
        for message in messages {
            switch message {
            case .published(let id, _, _):
                guard batches.removeValue(forKey: id) != nil else { continue }
                published += 1
                for index in chunks.indices { chunks[index].unconfirmed.remove(id) }
            case .publishFailed(let id, let reason):
                guard batches[id] != nil else { continue }
                logger.warning("publish not acknowledged (\(reason)); retrying")
                retryAt[id] = monotonicSeconds() + 1
            default:
                logger.warning("unexpected message from the broker: \(message)")
            }
        }
        if let closed, closed.kind != .connectionClosed { logger.warning("broker connection: \(closed)") }
        settleChunks()
    }

    /// Moves the watermark over the confirmed prefix of the log.
    private func settleChunks() {
        while let first = chunks.first, first.unconfirmed.isEmpty {
            chunks.removeFirst()
            advance(to: first.throughID)
        }
    }

    private func advance(to id: Int64) {
        watermark = id
        if watermarkDueAt == nil { watermarkDueAt = monotonicSeconds() + Self.watermarkInterval }
    }

    func drain() throws { try storeWatermark() }

    /// Stores the watermark now.
    func storeWatermark() throws {
        if watermark != storedWatermark {
            try PublishWatermark.write(watermark, to: database)
            storedWatermark = watermark
        }
        watermarkDueAt = nil
    }
}

extension SQLiteValue {
    var byteCount: Int {
        switch self {
        case .null: return 1
        case .integer, .real: return 9
        case .text(let bytes), .blob(let bytes): return 5 + bytes.count
        }
    }
}
