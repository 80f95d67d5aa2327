import ChangeLog
import Foundation
import HarmonyConfig
import IPC
import Logging
import NATSClient
import Signals
import Snapshots
import SQLiteKit
import WorkerRuntime

#if canImport(Glibc)
import Glibc
#endif

/// The snapshotter's work. At start, before the applier and the capturer run (the supervisor starts them
/// after this worker is ready), it restores the latest snapshot when the node needs one: no seq map, an
/// unreadable one, or a stream that no longer holds the messages after the node's cursor. Then, while it
/// holds the cluster's snapshot lease, it saves a snapshot every `snapshot.interval`, and whenever a shard
/// stream has taken half of `replication_log.max_entries` messages since the last snapshot — so a snapshot
/// always exists before the streams forget what it does not contain (HarmonyLite took one when its own
/// publish happened to hit a multiple of that count on shard 1, which with `interval = 0` could be never).
///
/// It has its own NATS connection: bulk transfers must not queue behind replication traffic in the broker.
final class SnapshotService: WorkerLoopHandler {
    private let runtime: WorkerRuntime
    private let config: Configuration
    private let logger: Logger
    private let settings: ConnectionSettings
    private var connection: NATSConnection?
    private var store: (any SnapshotStore)?
    private var lease: Lease?
    private var job: (kind: JobKind, work: BackgroundJob)?
    private var ready = false
    private var nextLeaseCheck = 0.0
    private var nextIntervalSnapshot: Double?
    private var nextHistoryCheck = 0.0
    /// The cursor of the newest snapshot in the store, known while this node holds the lease.
    private var snapshotCursor: [String: UInt64]?
    /// Holding the lease as of the last check, and knowing the newest snapshot: saving is on.
    private var leading: Bool { snapshotCursor != nil }
    private var lastProblem = ""
    private var nextAttempt = 0.0
    /// Why this node restores at start (inner nil: it need not), once decided.
    private var restoreReason: String??
    /// Set when this worker cannot go on: the loop's next tick stops it with this reason.
    private var failure: String?

    private var saved: Int64 = 0
    private var restored: Int64 = 0

    init(runtime: WorkerRuntime) throws {
        self.runtime = runtime
        config = runtime.configuration
        logger = runtime.logger
        settings = try ConnectionSettings(configuration: config, name: config.nodeName + "-snapshotter",
                                          heartbeatTimeout: config.workers["snapshotter", default: WorkerSettings()].heartbeatTimeout)
        if !config.snapshot.enabled { becomeReady("snapshots disabled: none are saved or restored") }
    }

    private var leaseTTL: Double { Double(config.snapshot.leaderTTL > 0 ? config.snapshot.leaderTTL : 30000) / 1000 }
    private var streams: [String] { (1...config.replicationLog.shards).map { "\(config.nats.streamPrefix)-\($0)" } }

    // MARK: WorkerLoopHandler

    var descriptors: [pollfd] { [] }

    var nextDeadline: Double? {
        guard config.snapshot.enabled else { return nil }
        if job != nil { return monotonicSeconds() + 0.1 }
        if connection == nil || !ready { return max(nextAttempt, monotonicSeconds()) }
        return [nextLeaseCheck, nextIntervalSnapshot ?? .infinity, leading ? nextHistoryCheck : .infinity].min()
    }

    var counters: [ControlMessage.Counter] {
        [.init("snapshots_saved", saved), .init("snapshots_restored", restored), .init("snapshot_leader", leading ? 1 : 0)]
    }

    func handle(readable: [pollfd], now: Double) throws {}

    func tick(now: Double) throws {
        step(now: now)
        if let failure { throw WorkerExit.failed(failure) }
    }

    private func step(now: Double) {
        guard config.snapshot.enabled else { return }
        if let job {
            let (lines, outcome) = job.work.poll()
            for line in lines { logger.info("\(line)") }
            if let last = lines.last { try? runtime.reportStatus(last) }
            guard let outcome else { return }
            self.job = nil
            finished(job.kind, outcome)
            return
        }
        guard let connection = connected() else { return }
        if !ready {
            startRestoreIfNeeded(connection)
            return
        }
        if now >= nextLeaseCheck {
            nextLeaseCheck = now + max(1, leaseTTL / 3)
            checkLease(connection)
        }
        guard leading else { return }
        if let due = nextIntervalSnapshot, now >= due {
            startSave(because: "snapshot.interval passed")
        } else if now >= nextHistoryCheck {
            nextHistoryCheck = now + 1
            if let reason = historyReason(connection) { startSave(because: reason) }
        }
    }

    /// Gives the lease up (on stop), so another node takes over at once.
    func drain() { lease?.release() }

    // MARK: steps

    private func connected() -> NATSConnection? {
        if let connection { return connection }
        guard monotonicSeconds() >= nextAttempt else { return nil }
        do {
            connection = try NATSConnection.connect(settings)
            return connection
        } catch {
            problem("waiting for NATS: \(error)")
            return nil
        }
    }

    /// The snapshot store, opened on first need (a restore, a save): an unreachable S3 or file server
    /// does not keep a node that needs no restore from starting.
    private func openedStore() -> (any SnapshotStore)? {
        if let store { return store }
        guard monotonicSeconds() >= nextAttempt else { return nil }
        do {
            store = try SnapshotStores.open(config, connection: connection)
            return store
        } catch {
            problem("snapshot store \(config.snapshot.store): \(error)")
            return nil
        }
    }

    /// Logs a problem once (until it changes) and waits a second before the next attempt.
    private func problem(_ text: String) {
        nextAttempt = monotonicSeconds() + 1
        guard text != lastProblem else { return }
        lastProblem = text
        logger.warning("\(text); trying again every second")
        try? runtime.reportStatus(text)
    }

    private func startRestoreIfNeeded(_ connection: NATSConnection) {
        guard config.replicate else { return becomeReady("replicate=false: nothing to restore") }
        if restoreReason == nil {
            var firstSequences: [String: UInt64] = [:]
            do {
                // The broker made the streams before this worker started: an error here is JetStream not
                // answering, and deciding without the streams could miss a gap.
                for stream in streams {
                    let state = try connection.streamState(stream)
                    if state.messages > 0 { firstSequences[stream] = state.firstSequence }
                }
            } catch {
                return problem("cannot read the shard streams to decide on a restore: \(error)")
            }
            do {
                let seqMap = Result<[String: UInt64]?, any Error> { try SeqMapFile.read(config.seqMapPath) }
                let database = try SQLiteDatabase(existingPath: config.dbPath)
                restoreReason = RestoreDecision.reason(seqMap: seqMap, cursor: try ChangeApplier.storedCursor(in: database), firstSequences: firstSequences)
            } catch {
                return fail("cannot decide whether a snapshot restore is needed: \(error)")
            }
        }
        // Decided once; only opening the store is retried.
        guard let reason = restoreReason! else { return becomeReady("no restore needed") }
        guard let store = openedStore() else { return }
        let settings = config
        nonisolated(unsafe) let unsafeStore = store
        logger.info("looking for a snapshot to restore: \(reason)")
        job = (.restore, BackgroundJob(name: "restore") { job in
            guard let (metadata, outcome, timing) = try SnapshotTransfers.restore(into: settings.dbPath, nodeID: settings.nodeID, store: unsafeStore, say: job.say) else {
                return JobReport(line: "no snapshot in the store yet: continuing without one")
            }
            try SeqMapFile.write(outcome.cursor, to: settings.seqMapPath)
            return JobReport(line: "restored the snapshot of node \(metadata.nodeID) taken at \(metadata.createdAt) ms (\(metadata.size) bytes, "
                + "download \(String(format: "%.2f", timing.transfer)) s, restore \(String(format: "%.2f", timing.local)) s), "
                + "cursor \(outcome.cursor.sorted { $0.key < $1.key }); kept \(outcome.keptLocalChanges) unpublished local change(s)", cursor: outcome.cursor)
        })
    }

    private func checkLease(_ connection: NATSConnection) {
        // Like HarmonyLite, only nodes that publish take snapshots: their database is a source of changes.
        guard config.publish else { return }
        let leader: Bool
        do {
            if lease == nil {
                lease = try Lease(connection: connection, bucket: config.nats.streamPrefix + "-snapshot-lease", key: "snapshot-leader",
                                  ttlMilliseconds: Int64(leaseTTL * 1000), replicas: config.replicationLog.effectiveReplicas)
            }
            leader = try lease!.acquireOrRenew(holder: "node \(config.nodeID)")
        } catch {
            if leading { logger.warning("cannot renew the snapshot lease (\(error)): not saving snapshots until it is renewed") }
            else { logger.debug("snapshot lease: \(error)") }
            (nextIntervalSnapshot, snapshotCursor) = (nil, nil)
            return
        }
        if leader && !leading {
            do {
                guard let store = openedStore() else { return }
                snapshotCursor = try store.latest()?.cursor ?? [:]
            } catch {
                logger.warning("holding the snapshot lease, but the store does not answer: \(error); trying again in \(Int(max(1, leaseTTL / 3))) s")
                return
            }
            logger.info("holding the snapshot lease: this node saves the snapshots")
            if config.snapshot.interval > 0 { nextIntervalSnapshot = monotonicSeconds() + Double(config.snapshot.interval) / 1000 }
        } else if !leader && leading {
            logger.info("lost the snapshot lease to another node")
            (nextIntervalSnapshot, snapshotCursor) = (nil, nil)
        }
    }

    /// Why a snapshot is due because of the streams' history, or nil.
    private func historyReason(_ connection: NATSConnection) -> String? {
        let threshold = UInt64(max(1, config.replicationLog.maxEntries / 2))
        for stream in streams {
            guard let state = try? connection.streamState(stream) else { continue }
            let covered = snapshotCursor?[stream] ?? 0
            if state.lastSequence >= covered + threshold {
                return "\(stream) took \(state.lastSequence - covered) messages since the last snapshot (half of replication_log.max_entries = \(config.replicationLog.maxEntries))"
            }
        }
        return nil
    }

    private func startSave(because reason: String) {
        nextIntervalSnapshot = nil
        guard let store = openedStore() else { return scheduleNextSave() }
        nonisolated(unsafe) let unsafeStore = store
        let settings = config
        logger.info("saving a snapshot: \(reason)")
        job = (.save, BackgroundJob(name: "save") { job in
            let (metadata, timing) = try SnapshotTransfers.save(database: settings.dbPath, nodeID: settings.nodeID, store: unsafeStore, say: job.say)
            return JobReport(line: "saved a snapshot: \(metadata.size) bytes (copy \(String(format: "%.2f", timing.local)) s, upload \(String(format: "%.2f", timing.transfer)) s), "
                + "cursor \(metadata.cursor.sorted { $0.key < $1.key })", cursor: metadata.cursor)
        })
    }

    private enum JobKind { case restore, save }

    private func finished(_ kind: JobKind, _ outcome: Result<JobReport, SnapshotJobError>) {
        switch (kind, outcome) {
        case (.restore, .success(let report)):
            restored += report.cursor == nil ? 0 : 1
            acceptGaps()
            becomeReady(report.line)
        case (.restore, .failure(let error)):
            fail("snapshot restore failed, the database is unchanged: \(error)")
        case (.save, .success(let report)):
            saved += 1
            if leading { snapshotCursor = report.cursor }
            logger.info("\(report.line)")
            try? runtime.reportStatus(report.line)
            scheduleNextSave()
        case (.save, .failure(let error)):
            logger.error("snapshot not saved: \(error); trying again in \(Int(Self.retryAfterFailure)) s at the earliest")
            try? runtime.reportStatus("snapshot not saved: \(error)")
            nextHistoryCheck = monotonicSeconds() + Self.retryAfterFailure
            scheduleNextSave()
        }
    }

    private static let retryAfterFailure = 5.0

    /// After a restore (or when the store had none), a stream that still starts past the node's cursor
    /// cannot be completed from anywhere: the missing changes are lost on this node. Said loudly, and the
    /// cursor moved to the stream's start — the one place a gap is ever accepted — so the applier, which
    /// stops at any gap, can go on. (The lease holder saves after every half `max_entries` messages, so this
    /// takes a cluster whose snapshots could not be saved, or `snapshot.enabled = false` on the publishers.)
    private func acceptGaps() {
        do {
            let (database, installation) = try ChangeLogInstaller.open(config.dbPath, node: config.nodeID)
            let applier = ChangeApplier(database: database, catalog: installation.catalog)
            var cursor = try applier.storedCursor()
            var moved = false
            for stream in streams {
                guard let state = try? connection?.streamState(stream), state.messages > 0 else { continue }
                let position = cursor[stream] ?? 0
                if position + 1 < state.firstSequence {
                    logger.error("\(stream) starts at message \(state.firstSequence) and no snapshot covers messages \(position + 1)…\(state.firstSequence - 1): those changes are missing on this node; consuming from \(state.firstSequence) (raise replication_log.max_entries, keep snapshots enabled on the nodes that publish)")
                    cursor[stream] = state.firstSequence - 1
                    moved = true
                }
            }
            guard moved else { return }
            _ = try applier.apply([], cursor: cursor)
            try SeqMapFile.write(cursor, to: config.seqMapPath)
        } catch {
            fail("cannot store the cursor past the missing changes: \(error)")
        }
    }

    private func scheduleNextSave() {
        guard leading, config.snapshot.interval > 0 else { return }
        nextIntervalSnapshot = monotonicSeconds() + Double(config.snapshot.interval) / 1000
    }

    private func becomeReady(_ detail: String) {
        ready = true
        let summary = config.snapshot.enabled ? "snapshots enabled (store \(config.snapshot.store)); \(detail)" : "snapshots disabled; \(detail)"
        logger.info("\(detail)")
        try? runtime.reportReady(summary)
    }

    /// A restore this node needs cannot be done: it must not start applying from a gap. The worker exits
    /// and the supervisor restarts it (and, if it keeps failing, stops the node saying why).
    private func fail(_ message: String) {
        try? runtime.reportStatus(message)
        failure = message
    }
}
