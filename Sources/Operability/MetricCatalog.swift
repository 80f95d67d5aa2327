import IPC

/// Every metric the node exports: its name (after `<namespace>_<subsystem>_`), unit suffix, kind, help,
/// the label that tells its series apart (besides `node_id`), and the worker counter that feeds it.
/// README "Metrics" lists the same table for operators.
public enum MetricCatalog {
    public enum Kind: Sendable { case counter, gauge, flag, histogram, timestamp }

    public struct Metric: Sendable {
        public var name: String
        public var unit: String
        public var kind: Kind
        public var help: String
        public var label: String?
        /// The worker counter (labelled by `label` when it has one) this metric comes from, if a worker's.
        public var source: WorkerCounter?
        public var buckets: [Double] = []
        /// What a worker's integer is multiplied by (milliseconds reported, seconds exported).
        public var scale: Double = 1

        public var fullName: String { unit.isEmpty ? name : name + "_" + unit }
    }

    // HarmonyLite's five, same names; its counter `published` lacked `_total` (`promtool check metrics` complains):
    // it is `published_total` here, and `published` stays as an alias, a gauge holding the same total (so
    // HarmonyLite's dashboards and `rate(harmonylite_published[5m])` keep working and promtool is satisfied).
    static let published = Metric(name: "published", unit: "total", kind: .counter, help: "number of rows published", source: .publishedRows)
    static let publishedAlias = Metric(
        name: "published", unit: "", kind: .gauge,
        help: "HarmonyLite's name of published_total (the same total, as a gauge): number of rows published")
    static let pendingPublish = Metric(name: "pending_publish", unit: "", kind: .gauge, help: "rows pending publishing", source: .pendingPublish)
    static let countChanges = Metric(
        name: "count_changes", unit: "", kind: .histogram, help: "latency counting changes in seconds",
        buckets: HistogramMetric.countChanges.bounds)
    static let scanChanges = Metric(
        name: "scan_changes", unit: "", kind: .histogram, help: "latency scanning change rows in DB in seconds",
        buckets: HistogramMetric.scanChanges.bounds)
    static let schemaMismatchPaused = Metric(
        name: "schema_mismatch_paused", unit: "", kind: .flag,
        help: "Replication paused due to schema mismatch (1=paused, 0=normal): messages parked waiting for a table or column this node lacks",
        source: .parkedWaiting)

    // What an operator of a replicator needs besides.
    static let applyLag = Metric(
        name: "apply_lag", unit: "seconds", kind: .histogram,
        help: "commit on the origin node (HLC stamp) to commit on this node, per stream", label: "stream",
        buckets: HistogramMetric.applyLag.bounds)
    static let streamLastSequence = Metric(
        name: "stream_last_sequence", unit: "", kind: .gauge, help: "last sequence in the shard stream",
        label: "stream", source: .streamLastSequence)
    static let streamCursor = Metric(
        name: "stream_cursor", unit: "", kind: .gauge, help: "last stream sequence this node applied (its cursor)",
        label: "stream", source: .streamCursor)
    static let appliedRows = Metric(name: "applied_rows", unit: "total", kind: .counter, help: "other nodes' row changes applied here", source: .appliedEvents)
    static let supersededRows = Metric(
        name: "superseded_rows", unit: "total", kind: .counter,
        help: "other nodes' row changes not applied because this node held a newer version", source: .supersededEvents)
    static let conflicts = Metric(
        name: "conflicts", unit: "total", kind: .counter,
        help: "Rows held aside by UNIQUE settlement: a row written later holds their value (listed in __harmonylite___conflicts while aside)",
        source: .uniqueConflicts)
    static let parkedMessages = Metric(
        name: "parked_messages", unit: "", kind: .gauge, help: "messages parked because they cannot be applied yet",
        source: .parkedMessages)
    static let applyFailures = Metric(
        name: "apply_failures", unit: "total", kind: .counter, help: "failed apply attempts (retried or parked)",
        source: .applyFailures)
    static let publishRetries = Metric(
        name: "publish_retries", unit: "total", kind: .counter,
        help: "batches JetStream did not acknowledge (the capturer sends them again)", source: .publishFailures)
    static let publishedMessages = Metric(
        name: "published_messages", unit: "total", kind: .counter, help: "messages JetStream acknowledged",
        source: .publishedBatches)
    static let deliveredMessages = Metric(
        name: "delivered_messages", unit: "total", kind: .counter, help: "messages fetched for the applier",
        source: .deliveredMessages)
    static let oversizedRows = Metric(
        name: "oversized_rows", unit: "total", kind: .counter, help: "rows too large for any message, not replicated",
        source: .oversizedRows)
    static let natsConnected = Metric(
        name: "nats_connected", unit: "", kind: .flag, help: "1 while the broker is connected to NATS",
        source: .natsConnected)
    static let tablesTracked = Metric(name: "tables_tracked", unit: "", kind: .gauge, help: "tables whose changes are captured", source: .tablesTracked)
    static let workerUp = Metric(name: "worker_up", unit: "", kind: .gauge, help: "1 while the worker process runs", label: "worker")
    static let workerRestarts = Metric(
        name: "worker_restarts", unit: "total", kind: .counter,
        help: "restarts of the worker after it died or hung, or for a snapshot restore (not reloads)", label: "worker")
    static let workerReloads = Metric(
        name: "worker_reloads", unit: "total", kind: .counter, help: "stops and starts of the worker for a reload (SIGHUP)",
        label: "worker")
    static let workerResidentMemory = Metric(
        name: "worker_resident_memory", unit: "bytes", kind: .gauge, help: "resident memory of the worker process",
        label: "worker")
    static let workerCPU = Metric(
        name: "worker_cpu", unit: "seconds_total", kind: .counter, help: "CPU time (user + system) of the worker processes",
        label: "worker")
    static let snapshotAge = Metric(
        name: "snapshot_age", unit: "seconds", kind: .gauge,
        help: "age of the newest snapshot this node saved, restored or saw in the store (-1: none known)")
    static let snapshotSize = Metric(name: "snapshot_size", unit: "bytes", kind: .gauge, help: "size of that snapshot", source: .snapshotSizeBytes)
    static let snapshotDuration = Metric(
        name: "snapshot_duration", unit: "seconds", kind: .gauge,
        help: "how long this node's last snapshot save or restore took (copy and transfer)", source: .snapshotJobMs, scale: 0.001)
    static let snapshotsSaved = Metric(name: "snapshots_saved", unit: "total", kind: .counter, help: "snapshots this node saved", source: .snapshotsSaved)
    static let snapshotRestores = Metric(
        name: "snapshot_restores", unit: "total", kind: .counter, help: "snapshots this node restored",
        source: .snapshotsRestored)
    static let snapshotLeader = Metric(
        name: "snapshot_leader", unit: "", kind: .flag, help: "1 while this node holds the snapshot lease",
        source: .snapshotLeader)
    static let futureStamps = Metric(
        name: "future_stamps", unit: "total", kind: .counter,
        help: "other nodes' changes stamped beyond this node's clock plus max_clock_offset (applied all the same)",
        source: .futureStamps)
    static let clampedLocalStamps = Metric(
        name: "clamped_local_stamps", unit: "total", kind: .counter,
        help: "local writes whose application clock ran beyond the node's clock plus max_clock_offset, stamped with the node's clock",
        source: .clampedLocalStamps)
    static let clockAhead = Metric(
        name: "clock_ahead", unit: "seconds", kind: .gauge,
        help: "how far the stamps of the node farthest ahead arrive ahead of this node's clock (above max_clock_offset: this clock is behind)",
        source: .clockAheadMs, scale: 0.001)
    static let uptime = Metric(name: "uptime", unit: "seconds", kind: .gauge, help: "seconds since the supervisor started")

    public static let all: [Metric] = [
        published, publishedAlias, pendingPublish, countChanges, scanChanges, schemaMismatchPaused, applyLag, streamLastSequence, streamCursor, appliedRows,
        supersededRows, conflicts, parkedMessages, applyFailures, publishRetries, publishedMessages, deliveredMessages, oversizedRows,
        natsConnected, tablesTracked, workerUp, workerRestarts, workerReloads, workerResidentMemory, workerCPU, snapshotAge, snapshotSize, snapshotDuration,
        snapshotsSaved, snapshotRestores, snapshotLeader, futureStamps, clampedLocalStamps, clockAhead, uptime,
    ]

    static let forWorkerCounter: [WorkerCounter: Metric] = Dictionary(all.compactMap { metric in metric.source.map { ($0, metric) } }) { first, _ in first }

    static let forHistogram: [HistogramMetric: Metric] = [.applyLag: applyLag, .countChanges: countChanges, .scanChanges: scanChanges]
}
