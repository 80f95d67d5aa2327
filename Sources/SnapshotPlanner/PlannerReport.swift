/// Something the planner tells a person: the glue logs it (and sets the worker's status line where the
/// report has one). The values are typed; the words, log levels and metadata are in
/// `PlannerReport+Rendering.swift` alone, so tests compare these values, never text.
public enum PlannerReport: Equatable, Sendable {
    // MARK: the start

    /// The worker is ready: why nothing (more) needs doing first.
    case ready(ReadyReason)
    /// A wait began: what the start (or the lease holder's store) needs does not answer; tried again every
    /// `retryEvery` s. Said once per different wait, then `stillWaiting` every `SnapshotPlanner.stillWaitingInterval` s.
    case waiting(for: Awaited, cause: String, retryEvery: Double)
    /// The same wait lasts `seconds` s now.
    case stillWaiting(for: Awaited, seconds: Int, cause: String)
    /// A restore job starts.
    case restoring(RestoreReason)
    /// The snapshot restored does not cover what the streams no longer hold (`gap`): the store is looked at
    /// every `lookEvery` s for a newer snapshot; the gap is accepted after `acceptedIn` s more.
    case gapUncovered(gap: String, lookEvery: Double, acceptedIn: Int)
    /// The restore refused the store's snapshot (`error`): the database is unchanged, tried again every
    /// `retryEvery` s. Said once per different refusal.
    case snapshotRefused(error: String, retryEvery: Double)

    // MARK: a node that needs its rows from a snapshot (`Bootstrap`)

    /// A new node's empty database and no snapshot in `store`: the lease holder was asked for one, and the
    /// store is looked at every `lookEvery` s.
    case waitingForSnapshot(store: String, lookEvery: Double)
    /// The wait for a snapshot lasts `seconds` s.
    case stillWaitingForSnapshot(seconds: Int, cause: SnapshotWaitCause)

    // MARK: the lease and saving

    /// This node took the lease and knows the newest snapshot: it saves the snapshots.
    case leading
    /// Another node holds the lease now.
    case leaseLost
    /// The renewal got no answer while leading: no saves until it is renewed.
    case leaseNotRenewed(error: String)
    /// Taking the lease got no answer while not leading (debug).
    case leaseUnanswered(error: String)
    /// Holding the lease, but the store does not say what its newest snapshot is; tried again in `retryIn` s.
    case leaseHolderStoreUnanswered(error: String, retryIn: Double)
    /// A save job starts.
    case saving(SaveReason)
    /// A save job is over: `summary` is the job's own account (size, timings, cursor); `fields` the same
    /// values one by one, for the log line's metadata.
    case saved(summary: String, fields: [String: String] = [:])
    /// A save job failed; the next one starts `retryIn` s later at the earliest.
    case saveFailed(error: String, retryIn: Double)

    // MARK: the schema registry

    /// Connected to NATS for the registry alone (snapshots disabled).
    case registryConnected
    /// NATS does not answer (snapshots disabled: for the registry alone); tried again every `retryEvery` s.
    case registryWaitingForNATS(cause: String, retryEvery: Double)
    /// This node's entry was written for the first time since start.
    case schemaRegistered(hash: String, tables: Int)
    /// This node's entry was written with a new schema hash.
    case schemaChanged(hash: String, tables: Int)
    /// The local schema cannot be read for the registry.
    case localSchemaUnreadable(error: String)
    /// This node's entry cannot be written; tried again in `retryIn` s.
    case registryNotWritten(error: String, retryIn: Double)
}

extension PlannerReport {
    /// Why the worker is ready.
    public enum ReadyReason: Equatable, Sendable {
        /// `snapshot.enabled = false`: none are saved or restored.
        case snapshotsDisabled
        /// `replicate = false`: nothing to restore.
        case replicationOff
        case noRestoreNeeded
        /// No restore may run now (`why`: the applier or the capturer is running).
        case restoreDeclined(why: String)
        /// A snapshot was restored; `summary` is the restore job's account of it, `fields` its values one by one.
        case restored(summary: String, fields: [String: String] = [:])
        /// A restore was needed but the store holds no snapshot yet: going on without one.
        case noSnapshotInStore
    }

    /// What a wait of the start is for.
    public enum Awaited: Equatable, Sendable {
        case nats
        /// The shard streams' state, to decide on a restore.
        case shardStreams
        /// The snapshot store (named), for a restore.
        case store(String)
        /// The snapshot store (named), opened because this node holds the lease.
        case storeForLease(String)
    }

    /// Why a restore job starts.
    public enum RestoreReason: Equatable, Sendable {
        /// The restore decision's reason (the glue's words: `RestoreDecision`, or the supervisor's request).
        case decided(String)
        /// The node needs its rows from a snapshot; `also`: the decision's own reason, if it had one.
        case bootstrap(Bootstrap, also: String?)
        /// A node waiting for a snapshot found one after `waited` s.
        case snapshotArrived(waited: Int)
        /// A newer snapshot is in the store while the one restored did not cover `gap`.
        case newerSnapshot(gap: String)
        /// Looking again after a refused snapshot, when the reason before it is not known.
        case afterRefusal
    }

    /// Why a save job starts.
    public enum SaveReason: Equatable, Sendable {
        /// `snapshot.interval` passed since the last save (or since taking the lease).
        case interval
        /// The newest snapshot claims message `claimed` of `stream`, which ends at `last` (a recreated stream,
        /// or hostile metadata): it is replaced.
        case snapshotPastStream(stream: String, claimed: UInt64, last: UInt64)
        /// `stream` took `messages` since the newest snapshot: half of `replication_log.max_entries` (`maxEntries`).
        case streamHistory(stream: String, messages: UInt64, maxEntries: Int64)
        /// A node waits for a snapshot (`request`: its request, as the lease bucket holds it).
        case nodeWaiting(request: String)
    }

    /// What a node waiting for a snapshot last ran into.
    public enum SnapshotWaitCause: Equatable, Sendable {
        /// Nothing went wrong: the store has no snapshot yet, and the lease holder was asked for one.
        case noSnapshotYet
        /// The lease holder could not be asked (`error`).
        case requestFailed(error: String)
        /// The store did not answer (`error`).
        case storeUnanswered(error: String)
    }
}
