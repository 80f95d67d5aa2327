/// A node whose database lacks the cluster's rows before it may replicate: the production guide's
/// data-corruption recovery (the database deleted; the supervisor created it empty) and a node added to a
/// running cluster (an empty database while the shard streams hold changes). Either is restored from the
/// newest snapshot. Without one, a deleted database is refused (the operator must act: nothing in the
/// cluster can rebuild it), and a new node asks the cluster's snapshot lease holder for a snapshot and waits
/// for it loudly; replaying the streams into a database without tables would only park every change.
public enum Bootstrap: Equatable, Sendable {
    /// The database file did not exist and was created empty at this start.
    case missingDatabase
    /// The database has no tables of the application while the shard streams took `streamMessages` changes.
    case emptyDatabase(streamMessages: UInt64)

    /// Whether a node needs its rows from a snapshot first: `databaseCreated` when the supervisor created the
    /// file at this start (and it has not been restored since), `userTables` the database's own tables,
    /// `streamMessages` the sum of the shard streams' last sequences (0: a cluster that never replicated, so an
    /// empty node misses nothing).
    public static func needed(databaseCreated: Bool, userTables: Int, streamMessages: UInt64) -> Bootstrap? {
        if databaseCreated { return .missingDatabase }
        if userTables == 0 && streamMessages > 0 { return .emptyDatabase(streamMessages: streamMessages) }
        return nil
    }
}

/// Events of a bootstrap that found no snapshot, and of the lease holder asked for one.
extension SnapshotPlanner {
    /// How often a node waiting for a snapshot asks again and looks in the store.
    static let snapshotWaitRetry = 3.0
    /// How often the wait is said again ("still waiting for …").
    static let waitReportInterval = 10.0

    /// The restore found no snapshot in the store, for a node that needs one.
    mutating func noSnapshotFor(_ need: Bootstrap, now: Double) -> [Action] {
        switch need {
        case .missingDatabase:
            phase = .stopped
            return [.refuse(.noSnapshotForMissingDatabase(store: settings.storeName))]
        case .emptyDatabase:
            waitingSince = now
            lastWaitReport = now
            phase = .waitingForSnapshot(nextCheck: now + Self.snapshotWaitRetry)
            return [.report(.waitingForSnapshot(store: settings.storeName, lookEvery: Self.snapshotWaitRetry)), .requestSnapshot]
        }
    }

    /// Asking the lease holder failed (NATS did not answer): said with the next wait line.
    public mutating func snapshotRequestFailed(_ error: String, now: Double) -> [Action] {
        guard case .waitingForSnapshot = phase else { return [] }
        waitCause = .requestFailed(error: error)
        return []
    }

    /// The waiting node's look at the store: a snapshot there is restored; none, the wait goes on.
    mutating func snapshotLooked(_ cursor: [String: UInt64]?, unanswered: String?, now: Double) -> [Action] {
        if cursor != nil {
            let waited = Int(now - (waitingSince ?? now))
            phase = .restoreNeeded(reason: .snapshotArrived(waited: waited), storeRetryAt: now)
            waitingSince = nil
            return startRestore(.snapshotArrived(waited: waited), now: now)
        }
        if let unanswered { waitCause = .storeUnanswered(error: unanswered) }
        // Said at the last look before the interval is over, so at most every `waitReportInterval` s.
        guard now + Self.snapshotWaitRetry > lastWaitReport + Self.waitReportInterval else { return [] }
        lastWaitReport = now
        let report = PlannerReport.stillWaitingForSnapshot(seconds: Int(now - (waitingSince ?? now)), cause: waitCause ?? .noSnapshotYet)
        waitCause = nil
        return [.report(report)]
    }

    /// The lease holder read the snapshot request key (nil: nobody waits). Each different request is
    /// answered with one save.
    public mutating func snapshotRequestRead(_ request: String?, now: Double) -> [Action] {
        guard phase == .ready, isLeading, let request, request != answeredRequest else { return [] }
        answeredRequest = request
        guard job == nil else { return [] }  // the save that runs answers it
        return startSave(because: .nodeWaiting(request: request), now: now)
    }
}
