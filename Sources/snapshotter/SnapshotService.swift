import ChangeLog
import Foundation
import HarmonyConfig
import IPC
import Logging
import NATSClient
import NodeNATS
import SQLiteKit
import SchemaRegistry
import Signals
import SnapshotPlanner
import Snapshots
import WorkerRuntime

#if canImport(Glibc)
import Glibc
#endif

/// The snapshotter's I/O: executes what `SnapshotPlanner` decides (NATS, the store, the lease, background
/// jobs, logs, status and ready reports) and tells it the results. At start, before the applier and the
/// capturer run (the supervisor starts them after this worker is ready), it restores the latest snapshot
/// when the node needs one, or when the supervisor asks it to (`RestoreRequest`: an in-place restore); it
/// restores only while it holds `RestoreLock` exclusively, so a snapshotter restarted while the applier
/// and the capturer run (a crash, a reload) never restores under them. Then, while it holds the cluster's
/// snapshot lease, it saves snapshots.
///
/// It also keeps this node's entry in the schema registry current.
///
/// It has its own NATS connection: bulk transfers must not queue behind replication traffic in the broker.
final class SnapshotService: WorkerLoopHandler {
    private let runtime: WorkerRuntime
    private let config: Configuration
    private let logger: Logger
    private let settings: ConnectionSettings
    private var planner: SnapshotPlanner
    private var connection: NATSConnection?
    private var store: (any SnapshotStore)?
    private var lease: Lease?
    private var registryBucket: KeyValueBucket?
    /// The lease bucket, for snapshot requests (asking, and reading as the lease holder).
    private var leaseRequests: KeyValueBucket?
    /// Kept open between schema reads: opening and closing the database every read would wake the
    /// capturer's watcher of the database's files each time. Dropped after an error, opened again next read.
    private var schemaReader: SQLiteDatabase?
    private var job: BackgroundJob?
    /// The newest snapshot this node saved, restored or saw in the store, for /metrics.
    private var newestSnapshot: (createdAt: Int64, size: Int64) = (0, 0)
    private var lastJobSeconds: Double = 0
    /// Why the supervisor asked this process to restore a snapshot at its start (nil: decide as usual).
    private let requestedRestore: String?
    /// Held from the restore decision until ready: the applier and the capturer are not running.
    private var restoreLock: RestoreLock?
    /// Signs the snapshots this node saves and checks the ones it reads (from the cluster secret).
    private let signingKey: SnapshotSigningKey

    init(runtime: WorkerRuntime) throws {
        self.runtime = runtime
        config = runtime.configuration
        logger = runtime.logger
        settings = try ConnectionSettings(
            configuration: config, name: config.nodeName + "-snapshotter",
            heartbeatTimeout: config.settings(for: .snapshotter).heartbeatTimeout)
        planner = SnapshotPlanner(settings: PlannerSettings(config))
        guard let key = config.snapshotSigningKey.flatMap(SnapshotSigningKey.init(hex:)) ?? (config.snapshot.enabled ? nil : SnapshotSigningKey(bytes: []))
        else {
            throw WorkerExit.failed("no snapshot signing key in the configuration (the supervisor derives it from the cluster secret)")
        }
        signingKey = key
        requestedRestore = getenv(RestoreRequest.environmentVariable).flatMap { String(validatingCString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        let now = monotonicSeconds()
        try execute(planner.start(now: now), now: now)
    }

    // MARK: WorkerLoopHandler

    var descriptors: [pollfd] { [] }

    var nextDeadline: Double? { planner.nextDeadline }

    /// `-status` asked: the node looks at the newest snapshot now (its age, whoever saved it).
    func refreshReadings() { try? execute(planner.freshReadingsAsked(now: monotonicSeconds()), now: monotonicSeconds()) }

    var counters: [ControlMessage.Counter] {
        [
            .init(.snapshotsSaved, planner.saved), .init(.snapshotsRestored, planner.restored),
            .init(.snapshotLeader, planner.isLeading ? 1 : 0), .init(.snapshotCreatedUnixMs, newestSnapshot.createdAt),
            .init(.snapshotSizeBytes, newestSnapshot.size), .init(.snapshotJobMs, Int64(lastJobSeconds * 1000)),
        ]
    }

    func handle(readable: [pollfd], now: Double) throws {}

    func tick(now: Double) throws { try execute(planner.tick(now: now), now: now) }

    /// Stopped by `sleep_timeout`: the lease holder saves a snapshot first (as HarmonyLite did), within the
    /// worker's `stop_timeout`; then the lease is given up as at any stop.
    func drain(reason: WorkerRuntime.StopReason) throws {
        if reason == .requested(ControlMessage.sleepTimeoutReason), planner.isLeading, let store, job == nil {
            logger.info("sleep_timeout: saving a last snapshot before stopping")
            do {
                let (metadata, timing) = try SnapshotTransfers.save(database: config.dbPath, nodeID: config.nodeID, store: store, key: signingKey) {
                    logger.info("\($0)")
                }
                logger.info(
                    "sleep_timeout: saved a snapshot",
                    metadata: ["size": "\(metadata.size)", "seconds": "\(String(format: "%.2f", timing.local + timing.transfer))"])
            } catch {
                logger.error("sleep_timeout: the last snapshot failed", metadata: ["error": "\(error)"])
            }
        }
        try drain()
    }

    /// Gives the lease up (on stop), so another node takes over at once.
    func drain() throws {
        let now = monotonicSeconds()
        try execute(planner.drain(), now: now)
    }

    // MARK: executing the planner's actions

    /// Executes the actions in order; an action that asks something is answered at once, and the planner's
    /// follow-up actions are executed before the next one.
    private func execute(_ actions: [PlannerAction], now: Double) throws {
        for action in actions {
            try execute(perform(action, now: now), now: now)
        }
    }

    /// One action's I/O, and the planner's answer to its result.
    private func perform(_ action: PlannerAction, now: Double) throws -> [PlannerAction] {
        switch action {
        case .connect:
            do {
                connection = try NATSConnection.connect(settings)
                return planner.connected(now: now)
            } catch {
                return planner.connectFailed("\(error)", now: now)
            }
        case .decideRestore:
            if restoreLock == nil {
                do {
                    restoreLock = try RestoreLock.takeForRestore(runDirectory: runtime.runDirectory)
                } catch {
                    return planner.restoreUndecided(RestoreDecisionError(.localStateUnreadable, "\(error)"), now: now)
                }
            }
            guard restoreLock != nil else {
                let lock = RestoreLock.path(runDirectory: runtime.runDirectory)
                if let requestedRestore {
                    logger.warning(
                        "a restore was asked for, but the applier or the capturer is running: not restoring under them",
                        metadata: ["request": "\(requestedRestore)", "lock": "\(lock)"])
                }
                return planner.restoreDeclined("the applier or the capturer is running (they hold \(lock))", now: now)
            }
            if let requestedRestore { return planner.restoreDecided(reason: "the supervisor asked for one: \(requestedRestore)", now: now) }
            do {
                let (reason, bootstrap) = try restoreReason()
                return planner.restoreDecided(reason: reason, bootstrap: bootstrap, now: now)
            } catch {
                return planner.restoreUndecided(error, now: now)
            }
        case .openStore:
            do {
                store = try SnapshotStores.open(config, connection: connection)
                return planner.storeOpened(now: now)
            } catch {
                return planner.storeOpenFailed("\(error)", now: now)
            }
        case .startJob(let kind):
            job =
                kind == .restore
                ? SnapshotJobs.restore(config, store: openStore, key: signingKey, currentStreams: streamIdentities())
                : SnapshotJobs.save(config, store: openStore, key: signingKey)
            return []
        case .pollJob:
            return pollJob(now: now)
        case .acceptGaps, .acceptCoveredGaps:
            do {
                if let uncovered = try GapAcceptance.acceptGaps(
                    config, streams: planner.settings.streams, connection: connectedNATS, logger: logger,
                    acceptMissing: action == .acceptGaps)
                {
                    return planner.gapsUncovered(uncovered, now: now)
                }
                return planner.gapsAccepted(now: now)
            } catch {
                return planner.gapsNotAccepted("\(error)", now: now)
            }
        case .checkLease:
            return planner.leaseChecked(checkLease(), now: now)
        case .readNewestSnapshot:
            do {
                let latest = try trustedNewestSnapshot(openStore)
                return planner.newestSnapshotRead(cursor: latest?.cursor, now: now)
            } catch {
                return planner.newestSnapshotUnanswered("\(error)", now: now)
            }
        case .lookAtNewestSnapshot:
            guard let connection else { return [] }
            do {
                let opened = try store ?? SnapshotStores.open(config, connection: connection)
                store = opened
                _ = try trustedNewestSnapshot(opened)
            } catch {
                logger.debug("cannot look at the newest snapshot in the store", metadata: ["error": "\(error)"])
            }
            return []
        case .readStreamHistory:
            var lastSequences: [String: UInt64] = [:]
            for stream in planner.settings.streams {
                if let state = try? connectedNATS.streamState(stream) { lastSequences[stream] = state.lastSequence }
            }
            return planner.streamHistoryRead(lastSequences: lastSequences, now: now)
        case .releaseLease:
            lease?.release()
            return []
        case .requestSnapshot:
            do {
                try leaseBucket().put(Configuration.snapshotRequestKey, Array(snapshotRequest.utf8))
                return []
            } catch {
                return planner.snapshotRequestFailed("\(error)", now: now)
            }
        case .readSnapshotRequest:
            // Hostile bytes: bounded, and only shown in a log line.
            let value = try? leaseBucket().value(Configuration.snapshotRequestKey)
            let request = value.flatMap { $0.isEmpty || $0.count > 512 ? nil : String(decoding: $0, as: UTF8.self) }
            return planner.snapshotRequestRead(request, now: now)
        case .readLocalSchema:
            do {
                let database = try schemaReader ?? SQLiteDatabase(readOnlyPath: config.dbPath)
                schemaReader = database
                let schema = try ReplicatedSchema.read(database)
                return planner.localSchemaRead(LocalSchema(hash: schema.hash, tables: schema.tables), now: now)
            } catch {
                schemaReader = nil
                return planner.localSchemaUnreadable("\(error)", now: now)
            }
        case .writeSchemaRegistry(let schema, let previousHash):
            do {
                try writeRegistryEntry(schema, previousHash: previousHash)
                return planner.schemaRegistryWritten(schema, previousHash: previousHash, now: now)
            } catch {
                return planner.schemaRegistryWriteFailed("\(error)", now: now)
            }
        case .reportReady(let reason):
            restoreLock = nil
            unlink(DatabaseCreatedMarker.path(runDirectory: runtime.runDirectory))
            try? runtime.reportReady(reason.summary(planner.settings))
            return []
        case .report(let report):
            logger.log(level: report.level, report.message, metadata: report.metadata)
            if let line = report.statusLine { try? runtime.reportStatus(line) }
            return []
        case .stop(let reason):
            try? runtime.reportStatus("\(reason)")
            restoreLock = nil
            throw WorkerExit.failed("\(reason)")
        case .refuse(let refusal):
            try? runtime.reportStatus("\(refusal)")
            undoDatabaseCreation()
            restoreLock = nil
            throw WorkerExit.refused("\(refusal)")
        }
    }

    /// The planner asks for NATS and the store only once they are there.
    private var connectedNATS: NATSConnection {
        guard let connection else { preconditionFailure("the snapshot planner asked for NATS before it was connected") }
        return connection
    }

    private var openStore: any SnapshotStore {
        guard let store else { preconditionFailure("the snapshot planner asked for the store before it was opened") }
        return store
    }

    /// What this node asks the lease holder with (the same for the whole wait, so it is answered once).
    private lazy var snapshotRequest: String = {
        var name = [CChar](repeating: 0, count: 256)
        let host = gethostname(&name, name.count) == 0 ? String(cString: name) : "unknown host"
        return "node \(config.nodeID) on \(host), pid \(getpid()), since \(Int64(Date().timeIntervalSince1970 * 1000))"
    }()

    /// The lease bucket (made by the set-up, or by the first lease holder).
    private func leaseBucket() throws -> KeyValueBucket {
        if let leaseRequests { return leaseRequests }
        guard let bucket = try KeyValueBucket.existing(connection: connectedNATS, name: config.snapshotLeaseBucket) else {
            throw WorkerExit.failed("the snapshot lease bucket \(config.snapshotLeaseBucket) does not exist yet (no node has taken the lease)")
        }
        leaseRequests = bucket
        return bucket
    }

    /// The empty database the supervisor created at this start is removed again when the start is refused,
    /// so the procedure can be repeated as written once a snapshot exists (only while it is still empty).
    private func undoDatabaseCreation() {
        let marker = DatabaseCreatedMarker.path(runDirectory: runtime.runDirectory)
        guard access(marker, F_OK) == 0 else { return }
        let empty = (try? SQLiteDatabase(readOnlyPath: config.dbPath)).flatMap { try? $0.scalarInteger("SELECT count(*) FROM sqlite_master") } == 0
        if empty {
            for suffix in ["", "-wal", "-shm"] { unlink(config.dbPath + suffix) }
            logger.info("removed the empty database created at this start", metadata: ["path": "\(config.dbPath)"])
        }
        unlink(marker)
    }

    /// Why this node restores at start (nil when it need not), and whether it needs its rows from a snapshot.
    private func restoreReason() throws(RestoreDecisionError) -> (String?, Bootstrap?) {
        var streams: [String: StreamState] = [:]
        do {
            // The broker made the streams before this worker started: an error here is JetStream not
            // answering, and deciding without the streams could miss a gap.
            for stream in planner.settings.streams { streams[stream] = try connectedNATS.streamState(stream) }
        } catch {
            throw RestoreDecisionError(.streamsUnanswered, "\(error)")
        }
        do {
            let seqMap = Result<[String: UInt64]?, any Error> { try SeqMapFile.read(config.seqMapPath) }
            let database = try SQLiteDatabase(existingPath: config.dbPath)
            let stored = RestoreDecision.Position(cursor: try ChangeApplier.storedCursor(in: database), streams: try StreamIdentities.read(in: database))
            let reason = RestoreDecision.reason(
                seqMap: seqMap, stored: stored,
                streams: streams.mapValues { .init(firstSequence: $0.messages > 0 ? $0.firstSequence : nil, created: $0.created) })
            let userTables = try database.scalarInteger(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_\\_harmonylite\\_\\_%' ESCAPE '\\'"
            )
            let bootstrap = Bootstrap.needed(
                databaseCreated: access(DatabaseCreatedMarker.path(runDirectory: runtime.runDirectory), F_OK) == 0,
                userTables: Int(userTables), streamMessages: streams.values.reduce(0) { $0 &+ $1.lastSequence })
            return (reason, bootstrap)
        } catch {
            throw RestoreDecisionError(.localStateUnreadable, "\(error)")
        }
    }

    /// Each shard stream's identity now (a stream that does not answer is left out: its cursor is taken as
    /// it is, and the applier checks the identity again when it consumes).
    private func streamIdentities() -> [String: UInt64] {
        var identities: [String: UInt64] = [:]
        for stream in planner.settings.streams {
            if let state = try? connectedNATS.streamState(stream), state.created != 0 { identities[stream] = state.created }
        }
        return identities
    }

    /// The store's newest snapshot if its signature holds (else nil, said once per read), remembered as the
    /// newest known when it is newer than what this node knew.
    private func trustedNewestSnapshot(_ store: any SnapshotStore) throws -> SnapshotMetadata? {
        guard let stored = try store.latest() else { return nil }
        do {
            try stored.verifySignature(signingKey, acceptUnsigned: config.snapshot.acceptUnsigned)
        } catch {
            // What it claims is not believed: read as no snapshot, so the lease holder's next save replaces it.
            logger.error("the snapshot store's newest snapshot is not trusted: its cursor is ignored", metadata: ["reason": "\(error)"])
            return nil
        }
        if stored.createdAt > newestSnapshot.createdAt { newestSnapshot = (stored.createdAt, stored.size) }
        return stored
    }

    private func pollJob(now: Double) -> [PlannerAction] {
        guard let job else { return [] }
        let (lines, outcome) = job.poll()
        for line in lines { logger.log(level: line.level, "\(line.note.message)", metadata: line.note.fields.mapValues { "\($0)" }) }
        if let last = lines.last { try? runtime.reportStatus("\(last.note)") }
        guard let outcome else { return [] }
        self.job = nil
        if case .success(let report) = outcome, let snapshot = report.snapshot {
            newestSnapshot = (snapshot.createdAt, snapshot.size)
            lastJobSeconds = snapshot.seconds
        }
        return planner.jobFinished(outcome, now: now)
    }

    private func writeRegistryEntry(_ schema: LocalSchema, previousHash: String?) throws(NATSError) {
        let bucket: KeyValueBucket
        if let registryBucket {
            bucket = registryBucket
        } else {
            let creation = KeyValueBucket.Creation(
                description: SchemaRegistryBucket.description, ttlSeconds: SchemaRegistryBucket.ttlSeconds,
                replicas: config.replicationLog.effectiveReplicas)
            bucket = try KeyValueBucket.openOrCreate(connection: connectedNATS, name: SchemaRegistryBucket.name, creation: creation)
            registryBucket = bucket
        }
        let entry = NodeSchemaState(
            nodeID: config.nodeID, schemaHash: schema.hash, previousHash: previousHash,
            version: HarmonyLiteVersion.number, updatedAt: Date(), tables: schema.tables)
        try bucket.put(SchemaRegistryBucket.key(nodeID: config.nodeID), entry.encoded())
    }

    private func checkLease() -> LeaseAnswer {
        do {
            let lease =
                try self.lease
                ?? Lease(
                    connection: connectedNATS, bucket: config.snapshotLeaseBucket, key: Configuration.snapshotLeaseKey,
                    ttlMilliseconds: Int64(planner.settings.leaseTTL * 1000), replicas: config.replicationLog.effectiveReplicas)
            self.lease = lease
            return try lease.acquireOrRenew(holder: "node \(config.nodeID)") ? .held : .heldByAnother
        } catch {
            return .unanswered("\(error)")
        }
    }
}
