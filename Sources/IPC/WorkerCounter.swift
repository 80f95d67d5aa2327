/// Every counter a worker reports with its heartbeats: the one vocabulary of the workers that produce them,
/// the metrics (`MetricCatalog`) and `-status` (`NodeTelemetry`). The raw value is the name on the wire; a
/// labelled counter travels as `name/<label>` (a stream's name). A name this build does not know (a newer
/// worker during a reload) is ignored by the receiver.
public enum WorkerCounter: String, CaseIterable, Sendable {
    // The capturer.
    case published
    case publishedRows = "published_rows"
    case pendingPublish = "pending_publish"
    case batchesInFlight = "batches_in_flight"
    case oversizedRows = "oversized_rows"
    case lastPublishedUnixMs = "last_published_unix_ms"
    case tablesTracked = "tables_tracked"
    case clampedLocalStamps = "clamped_local_stamps"
    // The broker.
    case natsConnected = "nats_connected"
    case publishedBatches = "published_batches"
    case publishFailures = "publish_failures"
    case deliveredMessages = "delivered_messages"
    case queuedDeliveries = "queued_deliveries"
    /// Labelled with the stream.
    case streamLastSequence = "stream_last_sequence"
    // The applier.
    case appliedEvents = "applied_events"
    case applyFailures = "apply_failures"
    case supersededEvents = "superseded_events"
    case uniqueConflicts = "unique_conflicts"
    case parkedMessages = "parked_messages"
    case parkedWaiting = "parked_waiting"
    case lastAppliedUnixMs = "last_applied_unix_ms"
    /// Labelled with the stream.
    case streamCursor = "stream_cursor"
    case futureStamps = "future_stamps"
    case clockAheadMs = "clock_ahead_ms"
    case clockAheadOrigin = "clock_ahead_origin"
    // The snapshotter.
    case snapshotCreatedUnixMs = "snapshot_created_unix_ms"
    case snapshotJobMs = "snapshot_job_ms"
    case snapshotLeader = "snapshot_leader"
    case snapshotSizeBytes = "snapshot_size_bytes"
    case snapshotsSaved = "snapshots_saved"
    case snapshotsRestored = "snapshots_restored"
    // Every worker: how long it has been waiting for a database lock another connection holds (ms), 0 when
    // it is not (`DatabaseWait`). `-status` and `/health` say so.
    case databaseWait = "database_wait_ms"
}

extension ControlMessage.Counter {
    public init(_ counter: WorkerCounter, _ value: Int64) { self.init(name: counter.rawValue, value) }

    /// A labelled counter: `counter`'s value for one `label` (a stream).
    public init(_ counter: WorkerCounter, label: String, _ value: Int64) { self.init(name: counter.rawValue + "/" + label, value) }

    /// Which counter this is and its label, or nil for a name this build does not know.
    public var parsed: (counter: WorkerCounter, label: String?)? {
        guard let slash = name.firstIndex(of: "/") else { return WorkerCounter(rawValue: name).map { ($0, nil) } }
        return WorkerCounter(rawValue: String(name[..<slash])).map { ($0, String(name[name.index(after: slash)...])) }
    }
}
