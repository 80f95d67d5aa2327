/// The snapshotter's whole decision logic, with no I/O and no clock: feed it what happened (with the loop's
/// monotonic `now`), execute the actions it returns, and answer the ones that ask something by calling the
/// matching event method. It owns every deadline, so `nextDeadline` is a value from its state.
///
/// At start it connects (retried every second), decides once whether the node restores the newest snapshot
/// (a JetStream error is retried, never read as empty streams), opens the store only when a restore needs
/// it (retried), runs the restore and is ready after it. Then, while it holds the lease and knows the newest
/// snapshot's cursor (leading), it saves every `snapshot.interval` and whenever a shard stream has taken half
/// of `replication_log.max_entries` messages since that snapshot. Once ready and connected — with snapshots
/// disabled it connects for this alone — it keeps this node's entry in the schema registry current
/// (`RegistrySchedule`).
public struct SnapshotPlanner: Sendable {
    public typealias Action = PlannerAction

    enum Phase: Equatable, Sendable {
        case notStarted
        /// `snapshot.enabled = false`: ready, nothing else.
        case disabled
        case connecting(retryAt: Double)
        case decidingRestore(retryAt: Double)
        /// Decided: a restore is needed. Only opening the store is retried; then the restore job runs.
        case restoreNeeded(reason: PlannerReport.RestoreReason, storeRetryAt: Double)
        /// The restore is over; the cursor is moved past what nothing holds any more, then ready.
        case acceptingGaps(readyDetail: PlannerReport.ReadyReason)
        /// The snapshot restored does not cover `gap`: the store's newest snapshot is read every
        /// `gapCoverRetry` s, and restored when it is another one, until `gapCoverDeadline`.
        case waitingForCover(gap: String, readyDetail: PlannerReport.ReadyReason, nextCheck: Double)
        /// A new node's empty database and no snapshot in the store: the lease holder is asked for one,
        /// and the store looked at every `snapshotWaitRetry` s.
        case waitingForSnapshot(nextCheck: Double)
        case ready
        /// The worker cannot go on.
        case stopped
    }

    struct RunningJob: Equatable, Sendable {
        var kind: JobKind
        var nextPoll: Double
    }

    static let retryInterval = 1.0
    /// How long a restore waits for a snapshot that covers what the streams no longer hold (the lease
    /// holder saves after every half `max_entries` messages), looking for a newer one every
    /// `gapCoverRetry` seconds, before it accepts the gap loudly.
    static let gapCoverWait = 60.0
    static let gapCoverRetry = 3.0
    static let jobPollInterval = 0.1
    static let historyCheckInterval = 1.0
    static let retryAfterFailedSave = 5.0
    /// How often a node whose restore refused the store's snapshot tries again.
    static let refusedSnapshotRetry = 30.0

    public let settings: PlannerSettings
    var phase: Phase = .notStarted
    var job: RunningJob?
    var storeOpen = false
    /// Until when a restore waits for a snapshot covering a gap (set at the first uncovered gap).
    var gapCoverDeadline: Double?
    /// The cursor of the snapshot restored last: one with the same cursor covers no more.
    var restoredCursor: [String: UInt64]?
    /// The last problem reported while retrying (its first report), so each is said once until it changes.
    var lastProblem: PlannerReport?
    /// Since when the current problem lasts, and when it was last said.
    var problemSince: Double?
    var problemSaid = 0.0
    /// Why this node restores its rows from a snapshot before replicating (nil: a restore as usual, which
    /// goes on without a snapshot when the store has none).
    var bootstrap: Bootstrap?
    /// Waiting for a snapshot: since when, when it was last said, and what went wrong meanwhile.
    var waitingSince: Double?
    var lastWaitReport = 0.0
    var waitCause: PlannerReport.SnapshotWaitCause?
    /// The last snapshot request this lease holder answered with a save.
    var answeredRequest: String?

    // Saving (once ready).
    /// JetStream's last answer gave this node the lease (an unanswered renewal leaves it so).
    var leaseHeld = false
    var nextLeaseCheck = 0.0
    /// The cursor of the newest snapshot in the store, known while this node holds the lease.
    var newestSnapshotCursor: [String: UInt64]?
    var nextIntervalSave: Double?
    var nextHistoryCheck = 0.0
    /// When the node looks at the store's newest snapshot next, and when it last did: its age is known on
    /// every node, and a leader learns of snapshots saved elsewhere (`-save-snapshot`) too.
    var nextNewestLook = 0.0
    var lastNewestLook = -Double.infinity
    /// How often a ready node looks at the newest snapshot; `-status` asks at most every 5 s.
    public static let newestLookInterval = 30.0
    static let newestLookOnRequest = 5.0

    var registry = RegistrySchedule()

    public internal(set) var saved: Int64 = 0
    public internal(set) var restored: Int64 = 0

    public init(settings: PlannerSettings) {
        self.settings = settings
    }

    // MARK: queries

    public var isReady: Bool { phase == .ready || phase == .disabled }
    /// Holding the lease as of the last check, and knowing the newest snapshot: saving is on.
    public var isLeading: Bool { newestSnapshotCursor != nil }
    public var runningJob: JobKind? { job?.kind }

    /// When the planner next needs a `tick`, if ever.
    public var nextDeadline: Double? {
        [snapshotDeadline, registryDeadline].compactMap { $0 }.min()
    }

    var snapshotDeadline: Double? {
        if let job { return job.nextPoll }
        switch phase {
        case .notStarted, .disabled, .acceptingGaps, .stopped: return nil
        case .connecting(let retryAt), .decidingRestore(let retryAt), .restoreNeeded(_, let retryAt), .waitingForCover(_, _, let retryAt),
            .waitingForSnapshot(let retryAt):
            return retryAt
        case .ready:
            var deadlines: [Double] = []
            if settings.publish { deadlines.append(nextLeaseCheck) }
            deadlines.append(nextNewestLook)
            if isLeading {
                deadlines.append(nextHistoryCheck)
                if let nextIntervalSave { deadlines.append(nextIntervalSave) }
            }
            return deadlines.min()
        }
    }

    /// `-status` asked for fresh readings: the node looks at the newest snapshot now, unless it did in the
    /// last few seconds.
    public mutating func freshReadingsAsked(now: Double) -> [Action] {
        guard phase == .ready, now - lastNewestLook >= Self.newestLookOnRequest else { return [] }
        return lookAtNewestSnapshot(now: now)
    }

    private mutating func lookAtNewestSnapshot(now: Double) -> [Action] {
        lastNewestLook = now
        nextNewestLook = now + Self.newestLookInterval
        return [.lookAtNewestSnapshot]
    }

    // MARK: events

    public mutating func start(now: Double) -> [Action] {
        guard phase == .notStarted else { return [] }
        guard settings.enabled else {
            phase = .disabled
            return readyActions(.snapshotsDisabled)
        }
        // Connecting is the first tick's work, not the start's: the loop heartbeats meanwhile.
        phase = .connecting(retryAt: now)
        return []
    }

    /// Timed work: called at every heartbeat and once `nextDeadline` has passed.
    public mutating func tick(now: Double) -> [Action] {
        registryWork(now: now) + snapshotWork(now: now)
    }

    mutating func snapshotWork(now: Double) -> [Action] {
        if var running = job {
            guard now >= running.nextPoll else { return [] }
            running.nextPoll = now + Self.jobPollInterval
            job = running
            return [.pollJob]
        }
        switch phase {
        case .connecting(let retryAt) where now >= retryAt: return [.connect]
        case .decidingRestore(let retryAt) where now >= retryAt: return [.decideRestore]
        case .restoreNeeded(_, let storeRetryAt) where now >= storeRetryAt: return [.openStore]
        case .waitingForCover(let gap, let detail, let nextCheck) where now >= nextCheck:
            // Not asked again before the answer (or the next retry, when it never comes).
            phase = .waitingForCover(gap: gap, readyDetail: detail, nextCheck: now + Self.gapCoverRetry)
            return [.readNewestSnapshot]
        case .waitingForSnapshot(let nextCheck) where now >= nextCheck:
            phase = .waitingForSnapshot(nextCheck: now + Self.snapshotWaitRetry)
            return [.requestSnapshot, .readNewestSnapshot]
        case .ready:
            guard now >= nextNewestLook else { return savingWork(now: now) }
            return lookAtNewestSnapshot(now: now) + savingWork(now: now)
        default: return []
        }
    }

    /// The last work before a normal stop: give the lease up, so another node takes over at once.
    public mutating func drain() -> [Action] {
        guard leaseHeld else { return [] }
        leaseHeld = false
        stopLeading()
        return [.releaseLease]
    }

    // MARK: shared steps

    mutating func becomeReady(_ detail: PlannerReport.ReadyReason, now: Double) -> [Action] {
        phase = .ready
        nextLeaseCheck = now
        return readyActions(detail)
    }

    func readyActions(_ detail: PlannerReport.ReadyReason) -> [Action] {
        [.report(.ready(detail)), .reportReady(detail)]
    }

    /// How often a wait that goes on is said again.
    static let stillWaitingInterval = 10.0

    /// Waiting for `what` because of `cause`, retried every `seconds`: said at once (`waiting`), then again
    /// every `stillWaitingInterval` s (`stillWaiting`, in the log and the status: `STATUS=` and `-status`
    /// show it) while it lasts; a new wait is said anew.
    mutating func problem(waitingFor what: PlannerReport.Awaited, cause: String, retryingEvery seconds: Double, now: Double) -> [Action] {
        let first = PlannerReport.waiting(for: what, cause: cause, retryEvery: seconds)
        guard first != lastProblem else {
            guard let since = problemSince, now - problemSaid >= Self.stillWaitingInterval else { return [] }
            problemSaid = now
            return [.report(.stillWaiting(for: what, seconds: Int(now - since), cause: cause))]
        }
        lastProblem = first
        problemSince = now
        problemSaid = now
        return [.report(first)]
    }

    /// The worker cannot go on (a restore it needs cannot be done: it must not start applying from a gap).
    /// The supervisor restarts it, and stops the node saying why if it keeps failing.
    mutating func fail(_ reason: Action.StopReason) -> [Action] {
        phase = .stopped
        job = nil
        return [.stop(reason)]
    }
}
