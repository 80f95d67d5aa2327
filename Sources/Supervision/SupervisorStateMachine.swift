import HarmonyConfig
import IPC

/// What the supervisor supervises: a name, whether the child speaks the control protocol, and its policy.
public struct ChildSpec: Equatable, Sendable {
    public var role: WorkerRole
    /// Workers connect, report ready and heartbeat. The embedded nats-server does not: the glue probes its
    /// port and reports `ready` for it, and its liveness is the process being alive.
    public var speaksControlProtocol: Bool
    public var settings: WorkerSettings
    /// The child that restores snapshots (the snapshotter): an in-place restore stops it and every child
    /// started after it, then starts it with `spawnToRestore` and the others after it as at start.
    public var restoresSnapshots: Bool
    /// A child without the control protocol whose life signs are answers to a probe the glue sends once it
    /// is ready (the embedded nats-server, see `EmbeddedServerProbe`): silent for `heartbeat_timeout` once
    /// ready, it is killed and restarted like a hung worker.
    public var livenessProbed: Bool

    public init(role: WorkerRole, speaksControlProtocol: Bool, settings: WorkerSettings, restoresSnapshots: Bool = false, livenessProbed: Bool = false) {
        self.role = role
        self.speaksControlProtocol = speaksControlProtocol
        self.settings = settings
        self.restoresSnapshots = restoresSnapshots
        self.livenessProbed = livenessProbed
    }

    /// `role` as a node runs it: its protocol, restore and probe come from the role.
    public init(role: WorkerRole, settings: WorkerSettings) {
        self.init(
            role: role, speaksControlProtocol: role.speaksControlProtocol, settings: settings, restoresSnapshots: role.restoresSnapshots,
            livenessProbed: role.livenessProbed)
    }

    /// Whether the child owes life signs now: a worker always, a probed child once ready.
    func owesLifeSigns(ready: Bool) -> Bool { speaksControlProtocol || (livenessProbed && ready) }

    var policy: RestartPolicy { RestartPolicy(settings) }
    var heartbeatTimeout: Double { Double(settings.heartbeatTimeout) / 1000 }
    var stopTimeout: Double { Double(settings.stopTimeout) / 1000 }
}

/// The supervisor's whole decision logic, with no I/O: feed it events (with the current monotonic time),
/// execute the actions it returns. Children start one at a time in the order given (each only after the
/// previous one is ready), crash-restart one-for-one with backoff, are killed when they stop heartbeating,
/// restart one at a time on reload, restore a snapshot in place when a worker needs one, and drain in
/// reverse order on shutdown.
public struct SupervisorStateMachine {
    public enum Event: Equatable, Sendable {
        case start
        case spawned(child: WorkerRole, pid: Int32)
        case spawnFailed(child: WorkerRole, reason: String)
        /// Any message from a worker: it is alive.
        case lifeSign(child: WorkerRole)
        case ready(child: WorkerRole, detail: String)
        case exited(pid: Int32, status: ExitStatus, note: String)
        /// A child ended because the configuration keeps it from starting (`problem`: what to change, e.g.
        /// `EmbeddedServerStartFailure`): restarting cannot help, so the node stops with
        /// `SupervisorExitCode.configuration`, which systemd does not restart on.
        case misconfigured(pid: Int32, status: ExitStatus, note: String, problem: String)
        case tick
        case terminate(reason: StopCause)
        case reload
    }

    public enum Action: Equatable, Sendable {
        case spawn(child: WorkerRole)
        /// Spawn the child that restores snapshots, asking it to restore one now for `reason` (the glue
        /// passes the reason in its environment, `RestoreRequest.environmentVariable`).
        case spawnToRestore(child: WorkerRole, reason: String)
        /// Ask for a graceful stop: the control `stop` message for a worker, SIGTERM for nats-server.
        case requestStop(child: WorkerRole, pid: Int32)
        case kill(pid: Int32)
        /// A datagram for systemd's notify socket.
        case notify(SystemdState)
        /// Something a person should know: the glue logs it (`SupervisorReport+Rendering.swift`).
        case report(SupervisorReport)
        case exit(code: Int32)
    }

    enum StopPurpose: Equatable { case hung, reload, restore, shutdown }

    enum ChildState: Equatable {
        case notStarted
        case running(pid: Int32, lastSign: Double, ready: Bool)
        case stopping(pid: Int32, deadline: Double, purpose: StopPurpose, killed: Bool)
        case waitingToRestart(at: Double)
    }

    struct Child {
        let spec: ChildSpec
        var state: ChildState = .notStarted
        var history = RestartPolicy.History()
        var restarts = 0
        /// Stops and starts asked for by a reload (SIGHUP): counted apart, they are not failures.
        var reloads = 0
    }

    /// The steps of an in-place restore: stop the restorer and every child after it (last first), start
    /// the restorer asking for a restore and wait for it to be ready, start the others in order.
    enum RestoreStage: Equatable { case stopping, restoring, starting }

    enum Phase: Equatable {
        case idle, starting, running
        case reloading(queue: [WorkerRole])
        /// An in-place snapshot restore (see `InPlaceRestore`); `announceReady`: READY=1 has not been sent
        /// yet for this start or reload, so it goes out when the restore is over.
        case restoring(askedBy: WorkerRole, stage: RestoreStage, announceReady: Bool)
        case stopping(exitCode: Int32)
        case exited
    }

    var children: [Child]
    var phase: Phase = .idle
    /// Why the node stops, when it was not asked to: said in every STATUS= of the stop.
    var stopReason: StopReason?
    /// A reload asked for during an in-place restore (or interrupted by one): done once the restore is over,
    /// never dropped (a reload's stops and the restore's would otherwise cross, and a child stopped by one
    /// and started by neither would stay stopped until the node restarts).
    var reloadDeferred = false
    private let watchdogInterval: Double?
    private var nextWatchdog: Double?
    /// While starting or reloading under systemd (the watchdog on): when to ask for more start time next
    /// (`EXTEND_TIMEOUT_USEC`), and since when it waits. A worker may wait as long as an application holds the
    /// database's write lock; `TimeoutStartSec` must not kill the node meanwhile.
    private var nextStartExtension: Double?
    private var waitingSince: Double = 0
    /// How often, and by how much, start-up time is extended.
    static let startExtensionInterval = 20.0
    static let startExtension = 60.0
    let randomUnit: () -> Double

    /// - Parameters:
    ///   - watchdogInterval: half of systemd's WATCHDOG_USEC, or nil when the watchdog is off.
    ///   - randomUnit: a source of numbers in 0..<1 for the restart jitter.
    public init(children: [ChildSpec], watchdogInterval: Double?, randomUnit: @escaping () -> Double) {
        self.children = children.map { Child(spec: $0) }
        self.watchdogInterval = watchdogInterval
        self.randomUnit = randomUnit
    }

    // MARK: queries for the glue

    /// The pid of a running (or stopping) child.
    public func pid(of name: WorkerRole) -> Int32? {
        guard let child = children.first(where: { $0.spec.role == name }) else { return nil }
        switch child.state {
        case .running(let pid, _, _), .stopping(let pid, _, _, _): return pid
        default: return nil
        }
    }

    public var isReady: Bool { phase == .running }
    public var hasExited: Bool { phase == .exited }

    /// Total restarts per child, for /metrics.
    public var restartCounts: [(WorkerRole, Int)] { children.map { ($0.spec.role, $0.restarts) } }

    /// Each child as `/health` and `-status` show it.
    public var childSummaries: [ChildSummary] {
        children.map { child in
            switch child.state {
            case .notStarted: ChildSummary(role: child.spec.role, state: .stopped, pid: nil, restarts: child.restarts, reloads: child.reloads)
            case .running(let pid, _, let ready):
                ChildSummary(role: child.spec.role, state: ready ? .running : .starting, pid: pid, restarts: child.restarts, reloads: child.reloads)
            case .stopping(let pid, _, _, _): ChildSummary(role: child.spec.role, state: .stopping, pid: pid, restarts: child.restarts, reloads: child.reloads)
            case .waitingToRestart: ChildSummary(role: child.spec.role, state: .restarting, pid: nil, restarts: child.restarts, reloads: child.reloads)
            }
        }
    }

    public struct ChildSummary: Equatable, Sendable {
        public var role: WorkerRole
        public var state: WorkerState
        public var pid: Int32?
        /// Restarts after a failure (died, hung, restore); reloads are not among them.
        public var restarts: Int
        public var reloads: Int
    }

    /// When the machine next needs a `.tick`, if ever.
    public var nextDeadline: Double? {
        var deadlines: [Double] = []
        if let nextWatchdog { deadlines.append(nextWatchdog) }
        for child in children {
            switch child.state {
            case .waitingToRestart(let at): deadlines.append(at)
            case .running(_, let lastSign, let ready) where child.spec.owesLifeSigns(ready: ready):
                deadlines.append(lastSign + child.spec.heartbeatTimeout / 2)
                deadlines.append(lastSign + child.spec.heartbeatTimeout)
            case .stopping(_, let deadline, _, false): deadlines.append(deadline)
            default: break
            }
        }
        return deadlines.min()
    }

    // MARK: events

    public mutating func handle(_ event: Event, now: Double) -> [Action] {
        var actions: [Action] = []
        switch event {
        case .start:
            guard phase == .idle else { return [] }
            phase = .starting
            if let watchdogInterval { nextWatchdog = now + watchdogInterval }
            if watchdogInterval != nil { nextStartExtension = now + Self.startExtensionInterval; waitingSince = now }
            advanceStartup(now: now, into: &actions)

        case .spawned(let name, let pid):
            update(name) { $0.state = .running(pid: pid, lastSign: now, ready: false) }
            actions.append(.report(.started(name, pid: pid)))

        case .spawnFailed(let name, let reason):
            guard let index = index(of: name) else { return [] }
            childEnded(index, why: ChildEnd(.couldNotStart(reason: reason)), now: now, into: &actions)

        case .lifeSign(let name):
            if let index = index(of: name), case .running(let pid, _, let ready) = children[index].state {
                children[index].state = .running(pid: pid, lastSign: now, ready: ready)
            }

        case .ready(let name, let detail):
            guard let index = index(of: name), case .running(let pid, _, let wasReady) = children[index].state else {
                return []
            }
            children[index].state = .running(pid: pid, lastSign: now, ready: true)
            if !wasReady { actions.append(.report(.ready(name, pid: pid, detail: detail))) }
            childBecameReady(name, now: now, into: &actions)

        case .exited(let pid, let status, let note):
            guard let index = children.firstIndex(where: { self.pid(of: $0.spec.role) == pid }) else { return [] }
            childExited(index, pid: pid, status: status, note: note, now: now, into: &actions)

        case .misconfigured(let pid, let status, let note, let problem):
            guard let index = children.firstIndex(where: { self.pid(of: $0.spec.role) == pid }) else { return [] }
            guard case .running = children[index].state, phase == .starting else {
                childExited(index, pid: pid, status: status, note: note, now: now, into: &actions)
                return actions
            }
            let name = children[index].spec.role
            children[index].state = .notStarted
            actions.append(.report(.misconfigured(name, problem: problem, ChildEnd(.exited(status), pid: pid, note: note))))
            actions.append(.notify(.status(.misconfigured(name, problem: problem))))
            beginShutdown(exitCode: SupervisorExitCode.configuration, because: .misconfigured(name), now: now, into: &actions)

        case .tick:
            tick(now: now, into: &actions)

        case .terminate(let reason):
            switch phase {
            case .stopping, .exited:
                actions.append(.report(.stopRequested(reason: reason, alreadyStopping: true)))
            default:
                actions.append(.report(.stopRequested(reason: reason, alreadyStopping: false)))
                beginShutdown(exitCode: 0, now: now, into: &actions)
            }

        case .reload:
            if case .restoring = phase {
                reloadDeferred = true
                actions.append(.report(.reloadDeferred))
                return actions
            }
            guard phase == .running else {
                actions.append(.report(.reloadIgnored(while: nodePhase)))
                return actions
            }
            beginReload(now: now, into: &actions)
        }
        return actions
    }

    mutating func beginReload(now: Double, into actions: inout [Action]) {
        reloadDeferred = false
        let queue = children.filter { $0.spec.speaksControlProtocol }.map(\.spec.role)
        phase = .reloading(queue: queue)
        if watchdogInterval != nil { nextStartExtension = now + Self.startExtensionInterval; waitingSince = now }
        actions.append(.notify(.reloading(.reloading)))
        actions.append(.report(.reloadStarted(workers: queue)))
        continueReload(now: now, into: &actions)
    }

    // MARK: start-up

    private mutating func advanceStartup(now: Double, into actions: inout [Action]) {
        guard startNext(of: children.indices, status: NodeStatus.starting, into: &actions) else { return }
        phase = .running
        actions.append(.notify(.ready(runningStatus)))
        actions.append(.report(.allReady))
    }

    private mutating func childBecameReady(_ name: WorkerRole, now: Double, into actions: inout [Action]) {
        switch phase {
        case .starting:
            advanceStartup(now: now, into: &actions)
        case .reloading(var queue) where queue.first == name:
            queue.removeFirst()
            phase = .reloading(queue: queue)
            continueReload(now: now, into: &actions)
        case .restoring:
            restoreChildReady(name, now: now, into: &actions)
        case .running:
            actions.append(.notify(.status(runningStatus)))
        default:
            break
        }
    }

    // MARK: reload

    private mutating func continueReload(now: Double, into actions: inout [Action]) {
        guard case .reloading(var queue) = phase else { return }
        while let name = queue.first, let index = index(of: name) {
            if case .running(let pid, _, true) = children[index].state {
                phase = .reloading(queue: queue)
                children[index].state = .stopping(pid: pid, deadline: now + children[index].spec.stopTimeout, purpose: .reload, killed: false)
                actions.append(.notify(.status(.reloadingWorker(name))))
                actions.append(.requestStop(child: name, pid: pid))
                return
            }
            if case .stopping(_, _, .reload, _) = children[index].state { return }
            if case .running(_, _, false) = children[index].state { return }
            // Crashed and waiting to restart: it comes back on the new binary anyway.
            queue.removeFirst()
        }
        phase = .running
        actions.append(.notify(.ready(runningStatus)))
        actions.append(.report(.reloadComplete))
    }

    // MARK: exits and restarts

    private mutating func childExited(_ index: Int, pid: Int32, status: ExitStatus, note: String, now: Double, into actions: inout [Action]) {
        let name = children[index].spec.role
        if case .stopping(_, _, let purpose, _) = children[index].state {
            if case .stopping = phase, purpose != .shutdown {
                // Stopped for a reload or a restore that the node's stop overtook: not started again.
                children[index].state = .notStarted
                actions.append(.report(.stopped(name, pid: pid, status)))
                continueShutdown(now: now, into: &actions)
                return
            }
            switch purpose {
            case .shutdown:
                children[index].state = .notStarted
                actions.append(.report(.stopped(name, pid: pid, status)))
                continueShutdown(now: now, into: &actions)
                return
            case .reload:
                children[index].state = .notStarted
                children[index].reloads += 1
                actions.append(.report(.stoppedForReload(name)))
                actions.append(.spawn(child: name))
                return
            case .restore:
                children[index].state = .notStarted
                children[index].restarts += 1
                actions.append(.report(.stoppedForRestore(name, pid: pid, status)))
                continueRestore(now: now, into: &actions)
                return
            case .hung:
                childEnded(index, why: ChildEnd(.killedUnresponsive, pid: pid, note: note), now: now, into: &actions)
                return
            }
        }
        if case .stopping = phase {
            children[index].state = .notStarted
            actions.append(.report(.endedWhileStopping(name, ChildEnd(.exited(status), pid: pid, note: note))))
            continueShutdown(now: now, into: &actions)
            return
        }
        if status.code == WorkerExitCode.restoreNeeded {
            beginRestore(index, note: note, now: now, into: &actions)
            return
        }
        if status.code == WorkerExitCode.refused {
            // Restarting cannot help: the node stops with a status systemd does not restart on.
            children[index].state = .notStarted
            actions.append(.report(.refused(name, note: note)))
            actions.append(.notify(.status(.refused(name, note: note))))
            beginShutdown(exitCode: SupervisorExitCode.refused, because: .refused(name), now: now, into: &actions)
            return
        }
        var why = ChildEnd(.exited(status), pid: pid, note: note)
        if status.couldBeAllocationFailure, children[index].spec.settings.memoryLimit > 0 {
            why.memoryLimit = children[index].spec.settings.memoryLimit
        }
        childEnded(index, why: why, now: now, into: &actions)
    }

    /// A child is gone without us asking: restart it with backoff, or give up past the intensity limit.
    private mutating func childEnded(_ index: Int, why: ChildEnd, now: Double, into actions: inout [Action]) {
        let name = children[index].spec.role
        let policy = children[index].spec.policy
        if case .stopping = phase {
            children[index].state = .notStarted
            continueShutdown(now: now, into: &actions)
            return
        }
        if restoreStopsOnItsOwn(index) {
            children[index].state = .notStarted
            actions.append(.report(.endedWhileRestoreStops(name, why)))
            continueRestore(now: now, into: &actions)
            return
        }
        guard let delay = children[index].history.recordCrash(at: now, policy: policy, randomUnit: randomUnit()) else {
            children[index].state = .notStarted
            actions.append(.report(.gaveUp(name, why, limit: RestartLimit(policy))))
            beginShutdown(exitCode: 1, because: .gaveUp(name, why), now: now, into: &actions)
            return
        }
        children[index].state = .waitingToRestart(at: now + delay)
        children[index].restarts += 1
        let attempt = children[index].history.restarts.count
        actions.append(.report(.restarting(name, why, delay: delay, attempt: attempt, limit: RestartLimit(policy))))
        actions.append(.notify(.status(.degraded(name, restartIn: delay, why))))
    }

    // MARK: ticks

    private mutating func tick(now: Double, into actions: inout [Action]) {
        for index in children.indices {
            let spec = children[index].spec
            switch children[index].state {
            case .waitingToRestart(let at) where at <= now:
                children[index].state = .notStarted
                actions.append(spawnAction(index))
            case .running(let pid, let lastSign, let ready) where spec.owesLifeSigns(ready: ready) && now - lastSign >= spec.heartbeatTimeout:
                children[index].state = .stopping(pid: pid, deadline: now + spec.stopTimeout, purpose: .hung, killed: true)
                let signs: LifeSigns = spec.speaksControlProtocol ? .heartbeats : .probeAnswers
                actions.append(.report(.unresponsive(spec.role, pid: pid, silence: now - lastSign, signs: signs)))
                actions.append(.kill(pid: pid))
            case .stopping(let pid, let deadline, let purpose, false) where now >= deadline:
                children[index].state = .stopping(pid: pid, deadline: deadline, purpose: purpose, killed: true)
                actions.append(.report(.stopTimedOut(spec.role, pid: pid, timeout: spec.stopTimeout)))
                actions.append(.kill(pid: pid))
            default:
                break
            }
        }
        if let due = nextStartExtension, now >= due {
            switch phase {
            case .starting, .reloading:
                nextStartExtension = now + Self.startExtensionInterval
                let waiting = children.filter { if case .running(_, _, true) = $0.state { return false } else { return true } }.map(\.spec.role)
                let seconds = Int(now - waitingSince)
                let status: NodeStatus = phase == .starting ? .startWaiting(for: waiting, seconds: seconds) : .reloadWaiting(for: waiting, seconds: seconds)
                actions.append(.notify(.extendTimeout(microseconds: Int(Self.startExtension * 1_000_000), status)))
            default:
                nextStartExtension = nil
            }
        }
        if let interval = watchdogInterval, let due = nextWatchdog, now >= due, phase != .exited {
            nextWatchdog = now + interval
            if let late = lateWorker(now: now) {
                actions.append(.report(.watchdogWithheld(late: late)))
            } else {
                actions.append(.notify(.watchdog))
            }
        }
    }

    /// A running worker that has missed two heartbeats: the node is not known to be healthy, so the
    /// supervisor stops vouching for it to systemd until the worker is replaced.
    private func lateWorker(now: Double) -> WorkerRole? {
        // Workers only: the supervisor restarts a silent nats-server itself, and its longer timeout (20 s) would
        // let systemd kill the whole node first under the shipped WatchdogSec=30s.
        for child in children where child.spec.speaksControlProtocol {
            if case .running(_, let lastSign, _) = child.state, now - lastSign > child.spec.heartbeatTimeout / 2 {
                return child.spec.role
            }
        }
        return nil
    }

    // MARK: shutdown

    mutating func beginShutdown(exitCode: Int32, because reason: StopReason? = nil, now: Double, into actions: inout [Action]) {
        phase = .stopping(exitCode: exitCode)
        stopReason = reason
        actions.append(.notify(.stopping(because: reason)))
        cancelRestarts(of: children.indices)
        continueShutdown(now: now, into: &actions)
    }

    /// Stops the last running child (reverse start order), one at a time; exits when none is left.
    private mutating func continueShutdown(now: Double, into actions: inout [Action]) {
        guard case .stopping(let exitCode) = phase,
            stopNext(
                of: children.indices, purpose: .shutdown, status: { [stopReason] in .stoppingChild($0, because: stopReason) }, now: now,
                into: &actions)
        else { return }
        phase = .exited
        nextWatchdog = nil
        actions.append(.report(.allStopped))
        actions.append(.exit(code: exitCode))
    }

    // MARK: helpers

    /// Starts the first child of `indices` not started yet: children start one at a time, each once the
    /// one before it is ready. True when all of them run and are ready. `status` is the STATUS= of a start.
    mutating func startNext(of indices: Range<Int>, status: (WorkerRole) -> NodeStatus, into actions: inout [Action]) -> Bool {
        for index in indices {
            switch children[index].state {
            case .notStarted:
                actions.append(.notify(.status(status(children[index].spec.role))))
                actions.append(.spawn(child: children[index].spec.role))
                return false
            case .running(_, _, true):
                continue
            default:
                return false
            }
        }
        return true
    }

    /// Asks the last running child of `indices` to stop (reverse start order, one at a time, for
    /// `purpose`). True when none of them runs any more.
    mutating func stopNext(
        of indices: Range<Int>, purpose: StopPurpose, status: (WorkerRole) -> NodeStatus, now: Double, into actions: inout [Action]
    ) -> Bool {
        for index in indices.reversed() {
            switch children[index].state {
            case .stopping:
                return false
            case .running(let pid, _, _):
                let spec = children[index].spec
                children[index].state = .stopping(pid: pid, deadline: now + spec.stopTimeout, purpose: purpose, killed: false)
                actions.append(.notify(.status(status(spec.role))))
                actions.append(.requestStop(child: spec.role, pid: pid))
                return false
            default:
                continue
            }
        }
        return true
    }

    /// Children of `indices` waiting for their restart are not restarted: what stops them (a shutdown, a
    /// restore) starts them, if ever.
    mutating func cancelRestarts(of indices: Range<Int>) {
        for index in indices {
            if case .waitingToRestart = children[index].state { children[index].state = .notStarted }
        }
    }

    func index(of name: WorkerRole) -> Int? { children.firstIndex { $0.spec.role == name } }

    private mutating func update(_ name: WorkerRole, _ body: (inout Child) -> Void) {
        if let index = index(of: name) { body(&children[index]) }
    }

    /// The children that run and are ready; while another waits for its restart, the node is degraded still.
    var runningStatus: NodeStatus {
        let running = children.filter { if case .running(_, _, true) = $0.state { true } else { false } }.map(\.spec.role)
        let restarting = children.filter { if case .waitingToRestart = $0.state { true } else { false } }.map(\.spec.role)
        return restarting.isEmpty ? .ready(running) : .degradedRestarting(restarting, running: running)
    }

    private var nodePhase: NodePhase {
        switch phase {
        case .idle: .notStarted
        case .starting: .starting
        case .running: .running
        case .reloading: .reloading
        case .restoring: .restoring
        case .stopping: .stopping
        case .exited: .stopped
        }
    }
}
