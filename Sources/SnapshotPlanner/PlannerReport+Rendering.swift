import Logging

/// The one place the planner's reports become words: a log level, a constant message (one per case: what
/// happened), swift-log metadata (the values), and the worker's status line where the report sets one
/// (`-status`, systemd's `STATUS=`; a wait's line starts with "waiting for " or "still waiting for ", which
/// `NodeView.Worker.isWait` reads).
extension PlannerReport {
    public var level: Logger.Level {
        switch self {
        case .ready, .restoring, .leading, .leaseLost, .saving, .saved, .registryConnected, .schemaRegistered, .schemaChanged: .info
        case .waiting, .stillWaiting, .gapUncovered, .waitingForSnapshot, .stillWaitingForSnapshot, .leaseNotRenewed, .leaseHolderStoreUnanswered,
            .registryWaitingForNATS, .localSchemaUnreadable, .registryNotWritten:
            .warning
        case .snapshotRefused, .saveFailed: .error
        case .leaseUnanswered: .debug
        }
    }

    public var message: Logger.Message {
        switch self {
        case .ready(let reason):
            switch reason {
            case .snapshotsDisabled: "ready: snapshots disabled, none are saved or restored"
            case .replicationOff: "ready: replicate=false, nothing to restore"
            case .noRestoreNeeded: "ready: no restore needed"
            case .restoreDeclined: "ready: no restore at this start"
            case .restored: "ready: restored the snapshot"
            case .noSnapshotInStore: "ready: no snapshot in the store yet, continuing without one"
            }
        case .waiting(let awaited, _, _):
            switch awaited {
            case .nats: "waiting for NATS; trying again"
            case .shardStreams: "waiting for the shard streams to decide on a restore; trying again"
            case .store: "waiting for the snapshot store; trying again"
            case .storeForLease: "waiting for the snapshot store (this node holds the snapshot lease); trying again"
            }
        case .stillWaiting(let awaited, _, _):
            switch awaited {
            case .nats: "still waiting for NATS"
            case .shardStreams: "still waiting for the shard streams to decide on a restore"
            case .store: "still waiting for the snapshot store"
            case .storeForLease: "still waiting for the snapshot store (this node holds the snapshot lease)"
            }
        case .restoring: "looking for a snapshot to restore"
        case .gapUncovered: "no snapshot covers what the streams no longer hold: waiting for a newer one, then the gap is accepted"
        case .snapshotRefused: "snapshot refused: the database is unchanged, looking for another snapshot"
        case .waitingForSnapshot:
            "no snapshot in the store yet for this new node's empty database: asked the snapshot lease holder to save one; waiting for it before replicating"
        case .stillWaitingForSnapshot: "still waiting for a snapshot"
        case .leading: "holding the snapshot lease: this node saves the snapshots"
        case .leaseLost: "lost the snapshot lease to another node"
        case .leaseNotRenewed: "cannot renew the snapshot lease: not saving snapshots until it is renewed"
        case .leaseUnanswered: "snapshot lease: no answer"
        case .leaseHolderStoreUnanswered: "holding the snapshot lease, but the store does not answer; trying again"
        case .saving(let reason):
            switch reason {
            case .interval: "saving a snapshot: snapshot.interval passed"
            case .snapshotPastStream: "saving a snapshot: the newest snapshot claims more messages than its stream holds"
            case .streamHistory: "saving a snapshot: a shard stream took half of replication_log.max_entries messages since the last snapshot"
            case .nodeWaiting: "saving a snapshot: a node is waiting for one"
            }
        case .saved: "saved a snapshot"
        case .saveFailed: "snapshot not saved; trying again later"
        case .registryConnected: "connected to NATS for the schema registry"
        case .registryWaitingForNATS: "waiting for NATS for the schema registry; trying again"
        case .schemaRegistered: "schema registry: registered this node's schema"
        case .schemaChanged: "schema registry: the schema changed"
        case .localSchemaUnreadable: "cannot read the local schema for the schema registry; trying again"
        case .registryNotWritten: "cannot write this node's entry to the schema registry; trying again"
        }
    }

    public var metadata: Logger.Metadata {
        switch self {
        case .ready(.restoreDeclined(let why)): ["reason": "\(why)"]
        case .ready(.restored(let summary, let fields)): fields.mapValues { "\($0)" }.merging(["snapshot": "\(summary)"]) { $1 }
        case .ready: [:]
        case .waiting(let awaited, let cause, let retryEvery):
            awaited.metadata.merging(["cause": "\(cause)", "retry_every_s": Self.seconds(retryEvery)]) { $1 }
        case .stillWaiting(let awaited, let seconds, let cause): awaited.metadata.merging(["cause": "\(cause)", "waited_s": "\(seconds)"]) { $1 }
        case .restoring(let reason): reason.metadata
        case .gapUncovered(let gap, let lookEvery, let acceptedIn):
            ["gap": "\(gap)", "look_every_s": Self.seconds(lookEvery), "accepted_in_s": "\(acceptedIn)"]
        case .snapshotRefused(let error, let retryEvery): ["error": "\(error)", "retry_every_s": Self.seconds(retryEvery)]
        case .waitingForSnapshot(let store, let lookEvery): ["store": "\(store)", "look_every_s": Self.seconds(lookEvery)]
        case .stillWaitingForSnapshot(let seconds, let cause): ["waited_s": "\(seconds)", "cause": "\(cause)"]
        case .leading, .leaseLost, .registryConnected: [:]
        case .leaseNotRenewed(let error), .leaseUnanswered(let error): ["error": "\(error)"]
        case .leaseHolderStoreUnanswered(let error, let retryIn): ["error": "\(error)", "retry_in_s": Self.seconds(retryIn)]
        case .saving(let reason): reason.metadata
        case .saved(let summary, let fields): fields.mapValues { "\($0)" }.merging(["snapshot": "\(summary)"]) { $1 }
        case .saveFailed(let error, let retryIn): ["error": "\(error)", "retry_in_s": Self.seconds(retryIn)]
        case .registryWaitingForNATS(let cause, let retryEvery): ["cause": "\(cause)", "retry_every_s": Self.seconds(retryEvery)]
        case .schemaRegistered(let hash, let tables), .schemaChanged(let hash, let tables): ["schema_hash": "\(hash.prefix(16))", "tables": "\(tables)"]
        case .localSchemaUnreadable(let error): ["error": "\(error)"]
        case .registryNotWritten(let error, let retryIn): ["error": "\(error)", "retry_in_s": Self.seconds(retryIn)]
        }
    }

    /// The worker's status line this report sets (nil: it leaves the status as it is).
    public var statusLine: String? {
        switch self {
        case .waiting(let awaited, let cause, _): "waiting for \(awaited): \(cause)"
        case .stillWaiting(let awaited, let seconds, let cause): "still waiting for \(awaited) (\(seconds) s): \(cause)"
        // Waits start "waiting for": the supervisor shows them in STATUS= and `-status` (`NodeView.Worker.isWait`).
        case .gapUncovered(let gap, _, _): "waiting for a snapshot that covers what the streams no longer hold (\(gap))"
        case .snapshotRefused(let error, let retryEvery):
            "waiting for another snapshot: snapshot refused: \(error); the database is unchanged, looking again every \(Self.seconds(retryEvery)) s"
        case .waitingForSnapshot: "waiting for a snapshot (0 s): \(SnapshotWaitCause.noSnapshotYet)"
        case .stillWaitingForSnapshot(let seconds, let cause): "still waiting for a snapshot (\(seconds) s): \(cause)"
        case .saved(let summary, _): "saved a snapshot: \(summary)"
        case .saveFailed(let error, _): "snapshot not saved: \(error)"
        case .ready, .restoring, .leading, .leaseLost, .leaseNotRenewed, .leaseUnanswered, .leaseHolderStoreUnanswered, .saving, .registryConnected,
            .registryWaitingForNATS, .schemaRegistered, .schemaChanged, .localSchemaUnreadable, .registryNotWritten:
            nil
        }
    }

    /// Whole seconds without a fraction ("3"), others with one ("3.3").
    static func seconds(_ value: Double) -> Logger.MetadataValue {
        value == value.rounded() && abs(value) < 1e15 ? "\(Int(value))" : "\((value * 10).rounded() / 10)"
    }
}

extension PlannerReport.ReadyReason: CustomStringConvertible {
    /// The worker's ready report to the supervisor (`-status`, the supervisor's log).
    public func summary(_ settings: PlannerSettings) -> String {
        settings.enabled ? "snapshots enabled (store \(settings.storeName)); \(self)" : "snapshots disabled; \(self)"
    }

    public var description: String {
        switch self {
        case .snapshotsDisabled: "snapshots disabled: none are saved or restored"
        case .replicationOff: "replicate=false: nothing to restore"
        case .noRestoreNeeded: "no restore needed"
        case .restoreDeclined(let why): "no restore at this start: \(why)"
        case .restored(let summary, _): "restored the snapshot: \(summary)"
        case .noSnapshotInStore: "no snapshot in the store yet: continuing without one"
        }
    }
}

extension PlannerReport.Awaited: CustomStringConvertible {
    /// For status lines: "waiting for \(awaited): …".
    public var description: String {
        switch self {
        case .nats: "NATS"
        case .shardStreams: "the shard streams (to decide on a restore)"
        case .store(let name): "the snapshot store \(name)"
        case .storeForLease(let name): "the snapshot store \(name) (this node holds the snapshot lease)"
        }
    }

    var metadata: Logger.Metadata {
        switch self {
        case .nats, .shardStreams: [:]
        case .store(let name), .storeForLease(let name): ["store": "\(name)"]
        }
    }
}

extension PlannerReport.RestoreReason {
    var metadata: Logger.Metadata {
        switch self {
        case .decided(let reason): ["reason": "\(reason)"]
        case .bootstrap(let need, nil): ["reason": "\(need)"]
        case .bootstrap(let need, let also?): ["reason": "\(need)", "also": "\(also)"]
        case .snapshotArrived(let waited): ["reason": "a snapshot is in the store", "waited_s": "\(waited)"]
        case .newerSnapshot(let gap): ["reason": "a newer snapshot is in the store", "gap": "\(gap)"]
        case .afterRefusal: ["reason": "a snapshot was refused before"]
        }
    }
}

extension PlannerReport.SaveReason {
    var metadata: Logger.Metadata {
        switch self {
        case .interval: [:]
        case .snapshotPastStream(let stream, let claimed, let last): ["stream": "\(stream)", "claimed": "\(claimed)", "last": "\(last)"]
        case .streamHistory(let stream, let messages, let maxEntries): ["stream": "\(stream)", "messages": "\(messages)", "max_entries": "\(maxEntries)"]
        case .nodeWaiting(let request): ["request": "\(request)"]
        }
    }
}

extension PlannerReport.SnapshotWaitCause: CustomStringConvertible {
    public var description: String {
        switch self {
        case .noSnapshotYet: "no snapshot in the store yet; the lease holder was asked to save one (is any node with publish = true running?)"
        case .requestFailed(let error): "cannot ask the lease holder: \(error)"
        case .storeUnanswered(let error): "the snapshot store does not answer: \(error)"
        }
    }
}

extension Bootstrap: CustomStringConvertible {
    /// Why the node restores, for the log.
    public var description: String {
        switch self {
        case .missingDatabase: "the database did not exist (created empty at this start): restoring the cluster's newest snapshot"
        case .emptyDatabase(let messages):
            "the database has no tables while the shard streams took \(messages) change(s) (a new node): bootstrapping from the newest snapshot"
        }
    }
}

extension PlannerAction.StopReason: CustomStringConvertible {
    /// The worker's status and exit reason (the supervisor logs it with the exit).
    public var description: String {
        switch self {
        case .restoreUndecidable(let error): "cannot decide whether a snapshot restore is needed: \(error)"
        case .restoreFailed(let error): "snapshot restore failed, the database is unchanged: \(error)"
        case .gapsNotStored(let error): "cannot store the cursor past the missing changes: \(error)"
        }
    }
}

extension PlannerAction.Refusal: CustomStringConvertible {
    /// The worker's status and refusal reason: what the operator must do.
    public var description: String {
        switch self {
        case .noSnapshotForMissingDatabase(let store):
            "the database did not exist and the snapshot store (\(store)) holds no snapshot to restore it from: "
                + "nothing was started. Copy the database from another node (stopped, or with sqlite3 .backup) to this path, "
                + "or save a snapshot on a running node (harmonylite -config FILE -save-snapshot), then start this node again; "
                + "to start a new cluster with an empty database, create it first (sqlite3 DB 'PRAGMA user_version;')"
        case .noSpaceForRestore(let error): "snapshot restore failed, the database is unchanged: \(error)"
        }
    }
}
