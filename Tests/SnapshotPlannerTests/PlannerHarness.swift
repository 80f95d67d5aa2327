@testable import SnapshotPlanner

/// The glue, simulated: answers every action that asks something from the fields below, records every
/// action with the time it was returned at, and moves the clock the way the worker loop does (to the
/// planner's deadline or the next heartbeat, whichever comes first).
struct PlannerHarness {
    typealias Action = PlannerAction

    static let streams = ["hl-1", "hl-2"]

    static func settings(
        enabled: Bool = true, replicate: Bool = true, publish: Bool = true, leaseTTL: Double = 3,
        interval: Double? = 10, maxEntries: Int64 = 100
    ) -> PlannerSettings {
        PlannerSettings(
            enabled: enabled, replicate: replicate, publish: publish, storeName: "nats", streams: streams,
            leaseTTL: leaseTTL, interval: interval, maxEntries: maxEntries)
    }

    var planner: SnapshotPlanner
    var now: Double
    let heartbeat = 1.0

    // The world's answers.
    var connects = true
    var restoreDecision: Result<String?, RestoreDecisionError> = .success(nil)
    /// Whether the node needs its rows from a snapshot (told with the restore decision).
    var bootstrap: Bootstrap?
    /// The snapshot request key in the lease bucket, as the lease holder reads it.
    var snapshotRequest: String?
    /// Set: asking the lease holder fails.
    var snapshotRequestError: String?
    var storeOpens = true
    var leaseAnswer: LeaseAnswer = .held
    var newestSnapshot: [String: UInt64]? = nil
    var lastSequences: [String: UInt64] = [:]
    var localSchema = LocalSchema(hash: "h1", tables: ["items"])
    /// Set: the database cannot be read.
    var localSchemaError: String?
    var registryAnswers = true
    /// What a job reports when polled (nil: still running).
    var jobOutcome: (JobKind) -> Result<JobReport, JobFailure>? = { _ in .success(JobReport(summary: "done", cursor: [:])) }
    /// What `acceptCoveredGaps` finds missing (nil: nothing).
    var uncoveredGap: String?

    /// Every action returned so far, with the `now` it was returned at.
    private(set) var record: [(now: Double, action: Action)] = []
    /// Times a deadline was before the `now` it was computed at while nothing was due (must stay empty).
    private(set) var pastDeadlinesWithNothingDue: [Double] = []

    init(_ settings: PlannerSettings = Self.settings(), now: Double = 100) {
        planner = SnapshotPlanner(settings: settings)
        self.now = now
    }

    /// Starts the planner and runs the loop's first wake-up.
    mutating func start() {
        execute(planner.start(now: now))
        run(until: now)
    }

    /// Runs the loop until `end`. A deadline in the past with nothing due is recorded and skipped to the
    /// next heartbeat (the real loop would spin there).
    mutating func run(until end: Double) {
        var nextHeartbeat = now
        while now <= end {
            let deadline = planner.nextDeadline.flatMap { pastDeadlinesWithNothingDue.last == now ? nil : $0 }
            let wakeAt = min(nextHeartbeat, deadline ?? .infinity)
            guard wakeAt <= end else { now = end; return }
            now = max(now, wakeAt)
            if now >= nextHeartbeat { nextHeartbeat = now + heartbeat }
            execute(planner.tick(now: now))
            checkDeadline()
        }
    }

    mutating func run(for seconds: Double) { run(until: now + seconds) }

    /// A deadline not after `now` is fine only when a tick at `now` has work to do.
    mutating func checkDeadline() {
        guard let deadline = planner.nextDeadline, deadline <= now else { return }
        var probe = planner
        if probe.tick(now: now).isEmpty { pastDeadlinesWithNothingDue.append(now) }
    }

    mutating func execute(_ actions: [Action]) {
        for action in actions {
            record.append((now, action))
            execute(answer(action))
        }
    }

    private mutating func answer(_ action: Action) -> [Action] {
        switch action {
        case .connect: connects ? planner.connected(now: now) : planner.connectFailed("connection refused", now: now)
        case .decideRestore:
            switch restoreDecision {
            case .success(let reason): planner.restoreDecided(reason: reason, bootstrap: bootstrap, now: now)
            case .failure(let error): planner.restoreUndecided(error, now: now)
            }
        case .openStore: storeOpens ? planner.storeOpened(now: now) : planner.storeOpenFailed("unreachable", now: now)
        case .pollJob:
            if let kind = planner.runningJob, let outcome = jobOutcome(kind) { planner.jobFinished(outcome, now: now) } else { [] }
        case .acceptGaps: planner.gapsAccepted(now: now)
        case .acceptCoveredGaps: uncoveredGap.map { planner.gapsUncovered($0, now: now) } ?? planner.gapsAccepted(now: now)
        case .checkLease: planner.leaseChecked(leaseAnswer, now: now)
        case .readNewestSnapshot: planner.newestSnapshotRead(cursor: newestSnapshot, now: now)
        case .readStreamHistory: planner.streamHistoryRead(lastSequences: lastSequences, now: now)
        case .readLocalSchema:
            if let localSchemaError { planner.localSchemaUnreadable(localSchemaError, now: now) } else { planner.localSchemaRead(localSchema, now: now) }
        case .writeSchemaRegistry(let schema, let previousHash):
            registryAnswers
                ? planner.schemaRegistryWritten(schema, previousHash: previousHash, now: now)
                : planner.schemaRegistryWriteFailed("timeout", now: now)
        case .requestSnapshot: snapshotRequestError.map { planner.snapshotRequestFailed($0, now: now) } ?? []
        case .readSnapshotRequest: planner.snapshotRequestRead(snapshotRequest, now: now)
        case .startJob, .releaseLease, .reportReady, .report, .stop, .refuse, .lookAtNewestSnapshot: []
        }
    }

    // MARK: reading the record

    func times(of action: Action) -> [Double] { record.filter { $0.action == action }.map(\.now) }
    var saveStarts: [Double] { times(of: .startJob(.save)) }
    /// Registry writes: when, which hash, which previous hash.
    var registryWrites: [(now: Double, hash: String, previousHash: String?)] {
        record.compactMap { entry in
            if case .writeSchemaRegistry(let schema, let previous) = entry.action { (entry.now, schema.hash, previous) } else { nil }
        }
    }
    /// What the planner told a person, in order (values: the words are `PlannerReport+Rendering`'s).
    var reports: [PlannerReport] { record.compactMap { if case .report(let report) = $0.action { report } else { nil } } }
    /// Reports of one kind, as `match` picks them out.
    func reports<T>(_ match: (PlannerReport) -> T?) -> [T] { reports.compactMap(match) }
    var stops: [Action.StopReason] { record.compactMap { if case .stop(let reason) = $0.action { reason } else { nil } } }
    var refusals: [Action.Refusal] { record.compactMap { if case .refuse(let refusal) = $0.action { refusal } else { nil } } }
    var readyReports: [PlannerReport.ReadyReason] { record.compactMap { if case .reportReady(let reason) = $0.action { reason } else { nil } } }
}
