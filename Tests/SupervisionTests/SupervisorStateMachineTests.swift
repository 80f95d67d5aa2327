import IPC
import TestSupport
import Testing

@testable import HarmonyConfig
@testable import Supervision

@Suite struct SupervisorStateMachineTests {
    typealias Machine = SupervisorStateMachine
    typealias Action = Machine.Action

    static let names = WorkerRole.allCases

    static func machine(watchdog: Double? = nil, settings: WorkerSettings = WorkerSettings(), restorer: WorkerRole? = .snapshotter) -> Machine {
        let specs = names.map { ChildSpec(role: $0, speaksControlProtocol: $0 != .nats, settings: settings, restoresSnapshots: $0 == restorer) }
        return Machine(children: specs, watchdogInterval: watchdog, randomUnit: { 0.5 })
    }

    /// Starts every child (pid 100 + index) and makes each ready; returns the actions of the last step.
    @discardableResult
    static func startAll(_ machine: inout Machine, now: Double = 0) -> [Action] {
        var last = machine.handle(.start, now: now)
        for (index, name) in names.enumerated() {
            #expect(last.contains(.spawn(child: name)), "\(name) is spawned only after the previous child is ready")
            _ = machine.handle(.spawned(child: name, pid: Int32(100 + index)), now: now)
            last = machine.handle(.ready(child: name, detail: ""), now: now)
        }
        return last
    }

    /// The restart budget of `WorkerSettings()`: 5 restarts within 60 s.
    static let defaultLimit = RestartLimit(intensity: 5, period: 60)

    static func notifications(_ actions: [Action]) -> [SystemdState] {
        actions.compactMap { if case .notify(let state) = $0 { return state } else { return nil } }
    }

    static func reports(_ actions: [Action]) -> [SupervisorReport] {
        actions.compactMap { if case .report(let report) = $0 { return report } else { return nil } }
    }

    /// Whether the actions send READY=1.
    static func sendsReady(_ actions: [Action]) -> Bool {
        notifications(actions).contains { if case .ready = $0 { true } else { false } }
    }

    @Test func childrenStartInOrderAndReadyComesLast() {
        var machine = Self.machine()
        var actions = machine.handle(.start, now: 0)
        #expect(actions.contains(.spawn(child: .nats)))
        #expect(!actions.contains(.spawn(child: .broker)))
        _ = machine.handle(.spawned(child: .nats, pid: 100), now: 0)
        // A life sign is not readiness: nothing else starts.
        #expect(machine.handle(.lifeSign(child: .nats), now: 0.1).isEmpty)
        actions = machine.handle(.ready(child: .nats, detail: ""), now: 0.2)
        #expect(actions.contains(.spawn(child: .broker)))
        #expect(!Self.sendsReady(actions))
        #expect(actions.contains(.report(.ready(.nats, pid: 100, detail: ""))))
        #expect(actions.contains(.notify(.status(.starting(.broker)))))

        machine = Self.machine()
        let last = Self.startAll(&machine)
        #expect(Self.notifications(last) == [.ready(.ready(Self.names))])
        #expect(Self.reports(last).contains(.allReady))
        #expect(machine.isReady)
    }

    /// Under systemd, a start that waits (a worker waiting for an application's write lock, say) asks for
    /// more start time every 20 s, naming what it waits for, so `TimeoutStartSec` does not kill the node; once
    /// ready, it stops asking. Without systemd's watchdog, never.
    @Test func aLongStartAsksSystemdForMoreTime() {
        var machine = Self.machine(watchdog: 10)
        _ = machine.handle(.start, now: 0)
        for (index, name) in Self.names.prefix(3).enumerated() {
            _ = machine.handle(.spawned(child: name, pid: Int32(100 + index)), now: 0)
            _ = machine.handle(.ready(child: name, detail: ""), now: 0)
        }
        _ = machine.handle(.spawned(child: .applier, pid: 103), now: 0)
        var extensions: [SystemdState] = []
        for second in stride(from: 1.0, through: 65, by: 1) {
            for name in Self.names { _ = machine.handle(.lifeSign(child: name), now: second) }
            extensions += Self.notifications(machine.handle(.tick, now: second)).filter(Self.extendsTimeout)
        }
        #expect(extensions.count == 3, "\(extensions)")
        #expect(extensions.first == .extendTimeout(microseconds: 60_000_000, .startWaiting(for: [.applier, .capturer], seconds: 20)), "\(extensions)")
        _ = machine.handle(.ready(child: .applier, detail: ""), now: 66)
        _ = machine.handle(.spawned(child: .capturer, pid: 104), now: 66)
        _ = machine.handle(.ready(child: .capturer, detail: ""), now: 66)
        #expect(machine.isReady)
        #expect(!Self.notifications(machine.handle(.tick, now: 100)).contains(where: Self.extendsTimeout))
        var plain = Self.machine()
        _ = plain.handle(.start, now: 0)
        #expect(!Self.notifications(plain.handle(.tick, now: 30)).contains(where: Self.extendsTimeout))
    }

    static func extendsTimeout(_ state: SystemdState) -> Bool { if case .extendTimeout = state { true } else { false } }

    @Test func crashedWorkerRestartsAloneAfterBackoff() {
        var machine = Self.machine()
        Self.startAll(&machine, now: 0)
        let actions = machine.handle(.exited(pid: 101, status: .killed(by: 9), note: ""), now: 1)
        #expect(!actions.contains { if case .requestStop = $0 { true } else { false } }, "no other child is touched")
        let end = ChildEnd(.exited(.killed(by: 9)), pid: 101)
        #expect(
            actions == [
                .report(.restarting(.broker, end, delay: 0.25, attempt: 1, limit: Self.defaultLimit)),
                .notify(.status(.degraded(.broker, restartIn: 0.25, end))),
            ])
        #expect(machine.handle(.tick, now: 1.2).isEmpty)
        #expect(machine.handle(.tick, now: 1.26) == [.spawn(child: .broker)])
        _ = machine.handle(.spawned(child: .broker, pid: 201), now: 1.26)
        #expect(machine.pid(of: .broker) == 201)
        #expect(machine.pid(of: .applier) == 103)
        let ready = machine.handle(.ready(child: .broker, detail: ""), now: 1.3)
        #expect(!Self.sendsReady(ready), "READY was sent once; it stays")
        #expect(Self.notifications(ready) == [.status(.ready(Self.names))])
        #expect(machine.isReady)
    }

    /// A child back while another still waits for its restart: STATUS= says degraded, naming both, not "ready".
    @Test func aChildBackWhileAnotherWaitsForItsRestartLeavesTheNodeDegraded() {
        var machine = Self.machine()
        Self.startAll(&machine, now: 0)
        _ = machine.handle(.exited(pid: 101, status: .killed(by: 9), note: ""), now: 1)
        #expect(machine.handle(.tick, now: 1.26) == [.spawn(child: .broker)])
        _ = machine.handle(.spawned(child: .broker, pid: 201), now: 1.26)
        _ = machine.handle(.exited(pid: 104, status: .killed(by: 9), note: ""), now: 1.3)
        let ready = machine.handle(.ready(child: .broker, detail: ""), now: 1.4)
        #expect(Self.notifications(ready) == [.status(.degradedRestarting([.capturer], running: [.nats, .broker, .snapshotter, .applier]))])
        #expect(
            SystemdState.status(.degradedRestarting([.capturer], running: [.nats, .broker])).notification
                == "STATUS=degraded: capturer restarting; nats, broker running")
        #expect(machine.handle(.tick, now: 1.56) == [.spawn(child: .capturer)])
        _ = machine.handle(.spawned(child: .capturer, pid: 204), now: 1.56)
        #expect(Self.notifications(machine.handle(.ready(child: .capturer, detail: ""), now: 1.6)) == [.status(.ready(Self.names))])
    }

    @Test func backoffDoublesWithJitterUpToTheMaximum() {
        let policy = RestartPolicy(initialDelay: 0.25, maximumDelay: 1.0, intensity: 10, period: 60)
        var history = RestartPolicy.History()
        let delays = (0..<5).map { history.recordCrash(at: Double($0), policy: policy, randomUnit: 0.5)! }
        #expect(delays == [0.25, 0.5, 1.0, 1.0, 1.0])
        var low = RestartPolicy.History()
        var high = RestartPolicy.History()
        #expect(low.recordCrash(at: 0, policy: policy, randomUnit: 0) == 0.25 * 0.8)
        #expect(high.recordCrash(at: 0, policy: policy, randomUnit: 0.999_999)! > 0.25 * 1.19)
    }

    @Test func restartsOutsideTheWindowAreForgotten() {
        let policy = RestartPolicy(initialDelay: 1, maximumDelay: 8, intensity: 2, period: 10)
        var history = RestartPolicy.History()
        #expect(history.recordCrash(at: 0, policy: policy, randomUnit: 0.5) == 1)
        #expect(history.recordCrash(at: 5, policy: policy, randomUnit: 0.5) == 2)
        #expect(history.recordCrash(at: 9, policy: policy, randomUnit: 0.5) == nil)
        #expect(history.recordCrash(at: 20, policy: policy, randomUnit: 0.5) == 1)
    }

    @Test func crashLoopPastTheIntensityStopsTheNodeWithFailure() {
        var settings = WorkerSettings()
        settings.restartIntensity = 2
        var machine = Self.machine(settings: settings)
        Self.startAll(&machine)
        var now = 1.0
        var pid: Int32 = 104
        for _ in 0..<2 {
            _ = machine.handle(.exited(pid: pid, status: .exited(1), note: ""), now: now)
            now += 1
            #expect(machine.handle(.tick, now: now).contains(.spawn(child: .capturer)))
            pid += 100
            _ = machine.handle(.spawned(child: .capturer, pid: pid), now: now)
        }
        let actions = machine.handle(.exited(pid: pid, status: .exited(1), note: ""), now: now)
        let end = ChildEnd(.exited(.exited(1)), pid: pid)
        #expect(Self.notifications(actions).first == .stopping(because: .gaveUp(.capturer, end)))
        #expect(Self.notifications(actions).last == .status(.stoppingChild(.applier, because: .gaveUp(.capturer, end))), "the reason stays in STATUS=")
        #expect(Self.reports(actions) == [.gaveUp(.capturer, end, limit: RestartLimit(intensity: 2, period: 60))])
        // The drain starts with the last child still running: applier.
        #expect(actions.contains(.requestStop(child: .applier, pid: 103)))
        var drained: [Action] = []
        for (pid, _) in [(103, "applier"), (102, "snapshotter"), (101, "broker"), (100, "nats")] {
            drained = machine.handle(.exited(pid: Int32(pid), status: .exited(0), note: ""), now: now)
        }
        #expect(drained.contains(.exit(code: 1)))
        #expect(Self.reports(drained) == [.stopped(.nats, pid: 100, .exited(0)), .allStopped])
        #expect(machine.hasExited)
    }

    /// The applier found changes gone from a stream, and no child restores snapshots (none is configured
    /// so): restarting it would only meet the same gap, so the node stops non-zero at once.
    @Test func workerThatNeedsARestoreWithoutARestorerStopsTheNode() {
        var machine = Self.machine(restorer: nil)
        Self.startAll(&machine)
        let actions = machine.handle(.exited(pid: 103, status: .exited(WorkerExitCode.restoreNeeded), note: "needs a snapshot restore"), now: 1)
        #expect(!actions.contains(.spawn(child: .applier)))
        #expect(Self.reports(actions) == [.restoreImpossible(askedBy: .applier, note: "needs a snapshot restore")])
        #expect(actions.contains(.requestStop(child: .capturer, pid: 104)))
        var drained: [Action] = []
        for pid in [104, 102, 101, 100] {
            drained = machine.handle(.exited(pid: Int32(pid), status: .exited(0), note: ""), now: 2)
        }
        #expect(drained.contains(.exit(code: 1)))
    }

    /// A worker refused to run (an upstream takeover that cannot finish): a restart would refuse again, so
    /// the node stops at once, at the first exit, with the status the systemd unit does not restart on.
    @Test func aRefusedWorkerStopsTheNodeAtOnceWithTheStatusSystemdDoesNotRestartOn() {
        var machine = Self.machine()
        Self.startAll(&machine)
        let actions = machine.handle(
            .exited(pid: 104, status: .exited(WorkerExitCode.refused), note: "cannot take over upstream HarmonyLite's change log: …"), now: 1)
        #expect(!actions.contains(.spawn(child: .capturer)))
        let note = "cannot take over upstream HarmonyLite's change log: …"
        #expect(Self.reports(actions) == [.refused(.capturer, note: note)], "refused, not restarting")
        #expect(
            Self.notifications(actions) == [
                .status(.refused(.capturer, note: note)), .stopping(because: .refused(.capturer)),
                .status(.stoppingChild(.applier, because: .refused(.capturer))),
            ])
        #expect(actions.contains(.requestStop(child: .applier, pid: 103)))
        var drained: [Action] = []
        for pid in [103, 102, 101, 100] {
            drained = machine.handle(.exited(pid: Int32(pid), status: .exited(0), note: ""), now: 2)
        }
        #expect(drained.contains(.exit(code: SupervisorExitCode.refused)))
        #expect(SupervisorExitCode.refused == 78)
    }

    @Test func terminateDrainsInReverseOrderAndKillsLaggards() {
        var settings = WorkerSettings()
        settings.stopTimeout = 1000
        var machine = Self.machine(settings: settings)
        Self.startAll(&machine)
        var actions = machine.handle(.terminate(reason: .sigterm), now: 1)
        #expect(Self.notifications(actions) == [.stopping(), .status(.stoppingChild(.capturer))])
        #expect(Self.reports(actions) == [.stopRequested(reason: .sigterm, alreadyStopping: false)])
        #expect(actions.contains(.requestStop(child: .capturer, pid: 104)))
        #expect(!actions.contains(.requestStop(child: .applier, pid: 103)))
        actions = machine.handle(.exited(pid: 104, status: .exited(0), note: ""), now: 1.1)
        #expect(actions.contains(.requestStop(child: .applier, pid: 103)))
        // applier does not stop in time.
        #expect(machine.handle(.tick, now: 2.2) == [.report(.stopTimedOut(.applier, pid: 103, timeout: 1)), .kill(pid: 103)])
        actions = machine.handle(.exited(pid: 103, status: .killed(by: 9), note: ""), now: 2.3)
        #expect(actions.contains(.requestStop(child: .snapshotter, pid: 102)))
        actions = machine.handle(.exited(pid: 102, status: .exited(0), note: ""), now: 2.4)
        #expect(actions.contains(.requestStop(child: .broker, pid: 101)))
        actions = machine.handle(.exited(pid: 101, status: .exited(0), note: ""), now: 2.5)
        #expect(actions.contains(.requestStop(child: .nats, pid: 100)))
        actions = machine.handle(.exited(pid: 100, status: .exited(0), note: ""), now: 2.6)
        #expect(actions.last == .exit(code: 0))
        // A second SIGTERM while stopping changes nothing.
        #expect(machine.handle(.terminate(reason: .sigterm), now: 2.7) == [.report(.stopRequested(reason: .sigterm, alreadyStopping: true))])
    }

    @Test func reloadRestartsWorkersOneAtATimeAndLeavesNATSAlone() {
        var machine = Self.machine()
        Self.startAll(&machine)
        var actions = machine.handle(.reload, now: 5)
        #expect(Self.notifications(actions) == [.reloading(.reloading), .status(.reloadingWorker(.broker))])
        #expect(Self.reports(actions) == [.reloadStarted(workers: [.broker, .snapshotter, .applier, .capturer])])
        var order: [WorkerRole] = []
        var pid: Int32 = 500
        for step in 0..<4 {
            guard let stop = actions.first(where: { if case .requestStop = $0 { true } else { false } }),
                case .requestStop(let name, let oldPID) = stop
            else {
                Issue.record("step \(step): no worker asked to stop")
                return
            }
            order.append(name)
            #expect(
                machine.handle(.exited(pid: oldPID, status: .exited(0), note: ""), now: 5) == [
                    .report(.stoppedForReload(name)), .spawn(child: name),
                ])
            _ = machine.handle(.spawned(child: name, pid: pid), now: 5)
            pid += 1
            actions = machine.handle(.ready(child: name, detail: ""), now: 5)
        }
        #expect(order == [WorkerRole.broker, .snapshotter, .applier, .capturer])
        #expect(Self.notifications(actions) == [.ready(.ready(Self.names))])
        #expect(Self.reports(actions).last == .reloadComplete)
        #expect(machine.pid(of: .nats) == 100)
        // A reload is not a restart: harmonylite_worker_restarts_total stays put, the reloads are counted apart.
        #expect(machine.restartCounts.first { $0.0 == .broker }?.1 == 0)
        #expect(machine.childSummaries.first { $0.role == .broker }.map { ($0.restarts, $0.reloads) } ?? (-1, -1) == (0, 1))
        #expect(machine.childSummaries.first { $0.role == .nats }?.reloads == 0)
    }

    @Test func memoryLimitIsNamedWhenAWorkerDiesTheWayAllocationFailuresEnd() {
        var settings = WorkerSettings()
        settings.memoryLimit = 64 << 20
        var machine = Self.machine(settings: settings)
        Self.startAll(&machine)
        let actions = machine.handle(.exited(pid: 102, status: .killed(by: 6), note: "peak resident memory 60 MiB"), now: 1)
        let end = ChildEnd(.exited(.killed(by: 6)), pid: 102, note: "peak resident memory 60 MiB", memoryLimit: 64 << 20)
        #expect(Self.reports(actions) == [.restarting(.snapshotter, end, delay: 0.25, attempt: 1, limit: Self.defaultLimit)])
        // A clean exit or SIGKILL is not how an allocation failure ends a process: no memory hint.
        let killed = machine.handle(.exited(pid: 103, status: .killed(by: 9), note: ""), now: 2)
        #expect(Self.reports(killed) == [.restarting(.applier, ChildEnd(.exited(.killed(by: 9)), pid: 103), delay: 0.25, attempt: 1, limit: Self.defaultLimit)])
    }

    @Test func failedSpawnCountsAsACrash() {
        var machine = Self.machine()
        _ = machine.handle(.start, now: 0)
        let actions = machine.handle(.spawnFailed(child: .nats, reason: "cannot execute /x: No such file"), now: 0)
        let end = ChildEnd(.couldNotStart(reason: "cannot execute /x: No such file"))
        #expect(Self.reports(actions) == [.restarting(.nats, end, delay: 0.25, attempt: 1, limit: Self.defaultLimit)])
        #expect(machine.handle(.tick, now: 1).contains(.spawn(child: .nats)))
    }
}
