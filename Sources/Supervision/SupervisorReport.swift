import HarmonyConfig

/// Something the supervisor's machine wants a person to know: one case per event it reports, with typed
/// values. The machine returns `.report(_)`; `SupervisorReport+Rendering.swift` turns each into a log line
/// (its level, a constant message and metadata), so tests compare values and the wording lives in one place.
public enum SupervisorReport: Equatable, Sendable {
    /// A child process was started.
    case started(WorkerRole, pid: Int32)
    /// A child reported ready for the first time since it started; `detail` is what it said (may be empty).
    case ready(WorkerRole, pid: Int32, detail: String)
    /// Every child runs and is ready: the node's start is over.
    case allReady
    /// A stop was asked for (SIGTERM, SIGINT, sleep_timeout: `reason`); `alreadyStopping` when the node was
    /// stopping anyway.
    case stopRequested(reason: StopCause, alreadyStopping: Bool)
    /// A child stopped as asked, for the node's stop.
    case stopped(WorkerRole, pid: Int32, ExitStatus)
    /// A child ended on its own while the node stops.
    case endedWhileStopping(WorkerRole, ChildEnd)
    /// A child asked to stop did not within its `stop_timeout`: it is killed.
    case stopTimedOut(WorkerRole, pid: Int32, timeout: Double)
    /// Every child has stopped: the supervisor exits.
    case allStopped
    /// A child ended without being asked; it is restarted after `delay` s, restart `attempt` of at most
    /// `limit.intensity` within `limit.period`.
    case restarting(WorkerRole, ChildEnd, delay: Double, attempt: Int, limit: RestartLimit)
    /// A child ended more often than its restart budget allows: the node stops with status 1.
    case gaveUp(WorkerRole, ChildEnd, limit: RestartLimit)
    /// A child refused the start (`WorkerExitCode.refused`, with what it said): the node stops with
    /// `SupervisorExitCode.refused`, which systemd does not restart.
    case refused(WorkerRole, note: String)
    /// A child cannot start with this configuration (`problem`: what to change): the node stops with
    /// `SupervisorExitCode.configuration`, which systemd does not restart on.
    case misconfigured(WorkerRole, problem: String, ChildEnd)
    /// A child owed life signs for `silence` s (`[workers.<role>] heartbeat_timeout`): it is killed.
    case unresponsive(WorkerRole, pid: Int32, silence: Double, signs: LifeSigns)
    /// The systemd watchdog is not pinged: this worker is late with its heartbeat.
    case watchdogWithheld(late: WorkerRole)
    /// A reload (SIGHUP) begins: these workers stop and start again, one at a time.
    case reloadStarted(workers: [WorkerRole])
    /// A child stopped for the reload; it is started again.
    case stoppedForReload(WorkerRole)
    /// Every worker was restarted: the reload is over.
    case reloadComplete
    /// A reload asked for during an in-place restore: done once the restore is over.
    case reloadDeferred
    /// A reload asked for while the node cannot reload (starting, stopping): ignored.
    case reloadIgnored(while: NodePhase)
    /// A worker found changes missing from the streams (`note`: what it said): these children stop, last
    /// first, and start again, the restorer asked to restore a snapshot. The node keeps running.
    case restoreStarted(askedBy: WorkerRole, note: String, stopping: [WorkerRole])
    /// A worker found changes missing from the streams, and no child restores snapshots: the node stops.
    case restoreImpossible(askedBy: WorkerRole, note: String)
    /// A worker found changes missing again, past its restart budget: restores did not cure it, the node stops.
    case restoresExhausted(askedBy: WorkerRole, note: String, limit: RestartLimit)
    /// A child stopped for the in-place restore.
    case stoppedForRestore(WorkerRole, pid: Int32, ExitStatus)
    /// A child ended on its own while the restore stops it: the restore starts it again.
    case endedWhileRestoreStops(WorkerRole, ChildEnd)
    /// The in-place restore is over and every child is ready.
    case restoreComplete
    /// The reload deferred during the restore starts now.
    case deferredReloadStarting
}

/// How a child ended without being asked to stop.
public struct ChildEnd: Equatable, Sendable {
    public enum Cause: Equatable, Sendable {
        /// It exited, or a signal killed it.
        case exited(ExitStatus)
        /// It could not be started (fork or exec failed).
        case couldNotStart(reason: String)
        /// The supervisor killed it after it missed its life signs.
        case killedUnresponsive
    }

    public var cause: Cause
    /// The process that ended (nil: none was started).
    public var pid: Int32?
    /// What the child said last (its stopping or cannot-start status, a crash line), or "".
    public var note: String
    /// Its `memory_limit` in bytes, when it has one and ended the way an allocation failure under RLIMIT_AS
    /// ends a process: raising the limit may help.
    public var memoryLimit: UInt64?

    public init(_ cause: Cause, pid: Int32? = nil, note: String = "", memoryLimit: UInt64? = nil) {
        self.cause = cause
        self.pid = pid
        self.note = note
        self.memoryLimit = memoryLimit
    }
}

/// A child's restart budget (`[workers.<role>] restart_intensity` within `restart_period_seconds`).
public struct RestartLimit: Equatable, Sendable {
    public var intensity: Int
    public var period: Int

    public init(intensity: Int, period: Int) {
        self.intensity = intensity
        self.period = period
    }

    init(_ policy: RestartPolicy) { self.init(intensity: policy.intensity, period: Int(policy.period)) }
}

/// What a child owes the supervisor to be deemed alive.
public enum LifeSigns: Equatable, Sendable {
    /// A worker's heartbeats over the control channel.
    case heartbeats
    /// Answers to the liveness probe the supervisor sends (the embedded nats-server).
    case probeAnswers
}

/// Where the node is, as a report names it.
public enum NodePhase: String, Equatable, Sendable {
    case notStarted = "not started"
    case starting, running, reloading
    case restoring = "restoring a snapshot"
    case stopping
    case stopped
}

/// A datagram for systemd's notify socket (`sd_notify`): the supervisor is the only process that talks to
/// systemd. `notification` (in `SupervisorReport+Rendering.swift`) is its text.
public enum SystemdState: Equatable, Sendable {
    /// `READY=1`: the start (or a reload, a restore during the start) is over.
    case ready(NodeStatus)
    /// `RELOADING=1`: a reload begins.
    case reloading(NodeStatus)
    /// `STOPPING=1`: the node stops; `because` says why when it is not asked to (nil: asked).
    case stopping(because: StopReason? = nil)
    /// A new `STATUS=` line alone.
    case status(NodeStatus)
    /// `WATCHDOG=1`.
    case watchdog
    /// `EXTEND_TIMEOUT_USEC=`: more start (or reload) time, while the status says what it waits for.
    case extendTimeout(microseconds: Int, NodeStatus)
}

/// The node's state as `systemctl status` shows it (`STATUS=`).
public enum NodeStatus: Equatable, Sendable {
    /// Starting this child (the node's start).
    case starting(WorkerRole)
    /// The start waits for these children to be ready, for `seconds` so far.
    case startWaiting(for: [WorkerRole], seconds: Int)
    /// A worker said, while the node starts, what it waits for.
    case workerWaiting(WorkerRole, said: String)
    /// Every child runs and is ready.
    case ready([WorkerRole])
    /// A child ended and is restarted in `restartIn` s.
    case degraded(WorkerRole, restartIn: Double, ChildEnd)
    /// These children wait for their restart; the others listed run and are ready.
    case degradedRestarting([WorkerRole], running: [WorkerRole])
    /// A child refused the start (with what it said): the node stops.
    case refused(WorkerRole, note: String)
    /// A child cannot start with this configuration (`problem`): the node stops.
    case misconfigured(WorkerRole, problem: String)
    /// A reload begins.
    case reloading
    /// The reload restarts this worker.
    case reloadingWorker(WorkerRole)
    /// The reload waits for these children to be ready, for `seconds` so far.
    case reloadWaiting(for: [WorkerRole], seconds: Int)
    /// An in-place restore begins: this worker found changes missing from the streams.
    case restoring(askedBy: WorkerRole)
    /// The restore stops this child.
    case restoreStopping(WorkerRole)
    /// This child (the snapshotter) restores a snapshot.
    case restorerRestoring(WorkerRole)
    /// The restore is over; this child starts again.
    case restoreStarting(WorkerRole)
    /// The node stops.
    case stopping
    /// The node's stop stops this child; `because` as in `SystemdState.stopping`.
    case stoppingChild(WorkerRole, because: StopReason? = nil)
}

/// Why the node stops when nobody asked it to: kept in every `STATUS=` of the stop, so the line systemd shows
/// last (`systemctl status`) still says it.
public enum StopReason: Equatable, Sendable {
    /// The child refused the start (`WorkerExitCode.refused`).
    case refused(WorkerRole)
    /// The child ended more often than its restart budget allows.
    case gaveUp(WorkerRole, ChildEnd)
    /// The child found changes missing and no restore could cure it (none possible, or past the budget).
    case restoreFailed(WorkerRole)
    /// The child cannot start with this configuration.
    case misconfigured(WorkerRole)
}

/// Why the node stops on its own account (not a refusal or a crash loop).
public enum StopCause: Equatable, Sendable, CustomStringConvertible {
    /// systemd or an operator: SIGTERM.
    case sigterm
    /// Ctrl-C: SIGINT.
    case sigint
    /// `sleep_timeout`: nothing published or applied for `seconds` s.
    case sleepTimeout(seconds: Double)

    public var description: String {
        switch self {
        case .sigterm: "SIGTERM"
        case .sigint: "SIGINT"
        case .sleepTimeout(let seconds): "sleep_timeout: no change published or applied for \(seconds) s"
        }
    }
}
