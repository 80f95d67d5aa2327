/// What the planner tells the glue to do. Actions that ask something (`connect`, `decideRestore`, …) are
/// answered by calling the planner's matching event method with the result.
public enum PlannerAction: Equatable, Sendable {
    /// Connect to NATS: answer `connected` or `connectFailed`.
    case connect
    /// Read the shard streams, the seq map and the database's cursor: answer `restoreDecided` or
    /// `restoreUndecided`.
    case decideRestore
    /// Open the snapshot store: answer `storeOpened` or `storeOpenFailed`.
    case openStore
    /// Start the job on its own thread (the store is open).
    case startJob(JobKind)
    /// Collect the job's progress lines, and answer `jobFinished` once it has an outcome.
    case pollJob
    /// Move the cursor past what no stream or snapshot holds any more: answer `gapsAccepted` or
    /// `gapsNotAccepted`.
    case acceptGaps
    /// Like `acceptGaps`, but changes no snapshot and no stream holds are not accepted yet: answer
    /// `gapsAccepted` (nothing uncovered) or `gapsUncovered`.
    case acceptCoveredGaps
    /// Take or renew the lease: answer `leaseChecked`.
    case checkLease
    /// Read the newest snapshot's metadata: answer `newestSnapshotRead` or `newestSnapshotUnanswered`.
    case readNewestSnapshot
    /// Look at the newest snapshot in the store (opening the store if needed) only to know its time and size
    /// (`-status`, `harmonylite_snapshot_age_seconds` on every node, whoever saved it). No answer.
    case lookAtNewestSnapshot
    /// Read each shard stream's last sequence: answer `streamHistoryRead`.
    case readStreamHistory
    /// Ask the snapshot lease holder for a snapshot (this node's empty database waits for one): answer
    /// `snapshotRequestFailed` when it could not be asked.
    case requestSnapshot
    /// The lease holder reads whether a node waits for a snapshot: answer `snapshotRequestRead`.
    case readSnapshotRequest
    /// Give the lease up.
    case releaseLease
    /// Read the local database's replicated tables and schema hash: answer `localSchemaRead` or
    /// `localSchemaUnreadable`.
    case readLocalSchema
    /// Write this node's entry to the schema registry: answer `schemaRegistryWritten` or
    /// `schemaRegistryWriteFailed`.
    case writeSchemaRegistry(LocalSchema, previousHash: String?)
    /// The worker is ready: tell the supervisor, with the reason's summary (`ReadyReason.summary`).
    case reportReady(PlannerReport.ReadyReason)
    /// Something a person should know: logged, and the worker's status line where the report has one
    /// (`PlannerReport+Rendering.swift`).
    case report(PlannerReport)
    /// The worker cannot go on: its status says why, it exits (status 1) and the supervisor restarts it.
    case stop(StopReason)
    /// The node must not start, and restarting it cannot help (an operator must act): its status says
    /// why, the worker undoes what this start made (the empty database the supervisor created) and exits
    /// with `WorkerExitCode.refused`; the supervisor stops the node.
    case refuse(Refusal)

    /// Why the worker cannot go on (its words: `PlannerReport+Rendering.swift`).
    public enum StopReason: Error, Equatable, Sendable {
        /// The database or its cursor cannot be read to decide on a restore.
        case restoreUndecidable(error: String)
        /// The restore job failed; the database is unchanged.
        case restoreFailed(error: String)
        /// The cursor cannot be stored past the changes no stream or snapshot holds any more.
        case gapsNotStored(error: String)
    }

    /// Why the node must not start.
    public enum Refusal: Error, Equatable, Sendable {
        /// The database did not exist and the store (named) holds no snapshot to restore it from.
        case noSnapshotForMissingDatabase(store: String)
        /// The restore the node needs found no disk space (`error` names the database and the cause); the
        /// database is unchanged.
        case noSpaceForRestore(error: String)
    }
}
