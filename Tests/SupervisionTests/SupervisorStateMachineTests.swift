import TestSupport
import IPC
import Testing

@testable import HarmonyConfig
@testable import Supervision

@Suite struct SupervisorStateMachineTests {
    typealias Machine = SupervisorStateMachine
    typealias Action = Machine.Action

    static let names = ["nats", "broker", "snapshotter", "applier", "capturer"]

    static func machine(watchdog: Double? = nil, settings: WorkerSettings = WorkerSettings(), restorer: String? = "snapshotter") -> Machine {
        let specs = names.map { ChildSpec(name: $0, speaksControlProtocol: $0 != "nats", settings: settings, restoresSnapshots: $0 == restorer) }
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

    static func notifications(_ actions: [Action]) -> [String] {
        actions.compactMap { if case .notify(let text) = $0 { return text } else { return nil } }
    }

    @Test func childrenStartInOrderAndReadyComesLast() {
        var machine = Self.machine()
        var actions = machine.handle(.start, now: 0)
        #expect(actions.contains(.spawn(child: "nats")))
        #expect(!actions.contains(.spawn(child: "broker")))
        _ = machine.handle(.spawned(child: "nats", pid: 100), now: 0)
        // A life sign is not readiness: nothing else starts.
        #expect(machine.handle(.lifeSign(child: "nats"), now: 0.1).isEmpty)
        actions = machine.handle(.ready(child: "nats", detail: ""), now: 0.2)
        #expect(actions.contains(.spawn(child: "broker")))
        #expect(!Self.notifications(actions).contains { $0.hasPrefix("READY=1") })

        machine = Self.machine()
        let last = Self.startAll(&machine)
        #expect(Self.notifications(last).contains { $0.hasPrefix("READY=1\nSTATUS=ready") })
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
        _ = machine.handle(.spawned(child: "applier", pid: 103), now: 0)
        var extensions: [String] = []
        for second in stride(from: 1.0, through: 65, by: 1) {
            for name in Self.names { _ = machine.handle(.lifeSign(child: name), now: second) }
            extensions += Self.notifications(machine.handle(.tick, now: second)).filter { $0.hasPrefix("EXTEND_TIMEOUT_USEC=") }
        }
        #expect(extensions.count == 3, "\(extensions)")
        #expect(extensions.first == "EXTEND_TIMEOUT_USEC=60000000\nSTATUS=starting: still waiting for applier, capturer to be ready (20 s)", "\(extensions)")
        _ = machine.handle(.ready(child: "applier", detail: ""), now: 66)
        _ = machine.handle(.spawned(child: "capturer", pid: 104), now: 66)
        _ = machine.handle(.ready(child: "capturer", detail: ""), now: 66)
        #expect(machine.isReady)
        #expect(!Self.notifications(machine.handle(.tick, now: 100)).contains { $0.hasPrefix("EXTEND_TIMEOUT_USEC=") })
        var plain = Self.machine()
        _ = plain.handle(.start, now: 0)
        #expect(!Self.notifications(plain.handle(.tick, now: 30)).contains { $0.hasPrefix("EXTEND_TIMEOUT_USEC=") })
    }

    @Test func crashedWorkerRestartsAloneAfterBackoff() {
        var machine = Self.machine()
        Self.startAll(&machine, now: 0)
        let actions = machine.handle(.exited(pid: 101, status: .killed(by: 9), note: ""), now: 1)
        #expect(!actions.contains { if case .requestStop = $0 { true } else { false } }, "no other child is touched")
        #expect(Self.notifications(actions).contains { $0.hasPrefix("STATUS=degraded: broker restarting in 0.3 s") })
        #expect(machine.handle(.tick, now: 1.2).isEmpty)
        #expect(machine.handle(.tick, now: 1.26) == [.spawn(child: "broker")])
        _ = machine.handle(.spawned(child: "broker", pid: 201), now: 1.26)
        #expect(machine.pid(of: "broker") == 201)
        #expect(machine.pid(of: "applier") == 103)
        let ready = machine.handle(.ready(child: "broker", detail: ""), now: 1.3)
        #expect(!Self.notifications(ready).contains { $0.hasPrefix("READY=1") }, "READY was sent once; it stays")
        #expect(machine.isReady)
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
            #expect(machine.handle(.tick, now: now).contains(.spawn(child: "capturer")))
            pid += 100
            _ = machine.handle(.spawned(child: "capturer", pid: pid), now: now)
        }
        let actions = machine.handle(.exited(pid: pid, status: .exited(1), note: ""), now: now)
        #expect(Self.notifications(actions).first == "STOPPING=1\nSTATUS=stopping")
        #expect(actions.contains { if case .log(.error, let text) = $0 { text.contains("restart_intensity") } else { false } })
        // The drain starts with the last child still running: applier.
        #expect(actions.contains(.requestStop(child: "applier", pid: 103)))
        var drained: [Action] = []
        for (pid, _) in [(103, "applier"), (102, "snapshotter"), (101, "broker"), (100, "nats")] {
            drained = machine.handle(.exited(pid: Int32(pid), status: .exited(0), note: ""), now: now)
        }
        #expect(drained.contains(.exit(code: 1)))
        #expect(machine.hasExited)
    }

    /// The applier found changes gone from a stream, and no child restores snapshots (none is configured
    /// so): restarting it would only meet the same gap, so the node stops non-zero at once.
    @Test func workerThatNeedsARestoreWithoutARestorerStopsTheNode() {
        var machine = Self.machine(restorer: nil)
        Self.startAll(&machine)
        let actions = machine.handle(.exited(pid: 103, status: .exited(WorkerExitCode.restoreNeeded), note: "needs a snapshot restore"), now: 1)
        #expect(!actions.contains(.spawn(child: "applier")))
        #expect(actions.contains { if case .log(.error, let text) = $0 { text.contains("no child restores snapshots") } else { false } })
        #expect(actions.contains(.requestStop(child: "capturer", pid: 104)))
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
        let actions = machine.handle(.exited(pid: 104, status: .exited(WorkerExitCode.refused), note: "cannot take over upstream HarmonyLite's change log: …"), now: 1)
        #expect(!actions.contains(.spawn(child: "capturer")))
        #expect(!actions.contains { if case .log(_, let text) = $0 { text.contains("restarting it in") } else { false } })
        #expect(actions.contains { if case .log(.error, let text) = $0 { text.contains("capturer refused the start; cannot take over upstream") } else { false } })
        #expect(actions.contains(.requestStop(child: "applier", pid: 103)))
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
        var actions = machine.handle(.terminate(reason: "SIGTERM"), now: 1)
        #expect(Self.notifications(actions).first == "STOPPING=1\nSTATUS=stopping")
        #expect(actions.contains(.requestStop(child: "capturer", pid: 104)))
        #expect(!actions.contains(.requestStop(child: "applier", pid: 103)))
        actions = machine.handle(.exited(pid: 104, status: .exited(0), note: ""), now: 1.1)
        #expect(actions.contains(.requestStop(child: "applier", pid: 103)))
        // applier does not stop in time.
        #expect(machine.handle(.tick, now: 2.2).contains(.kill(pid: 103)))
        actions = machine.handle(.exited(pid: 103, status: .killed(by: 9), note: ""), now: 2.3)
        #expect(actions.contains(.requestStop(child: "snapshotter", pid: 102)))
        actions = machine.handle(.exited(pid: 102, status: .exited(0), note: ""), now: 2.4)
        #expect(actions.contains(.requestStop(child: "broker", pid: 101)))
        actions = machine.handle(.exited(pid: 101, status: .exited(0), note: ""), now: 2.5)
        #expect(actions.contains(.requestStop(child: "nats", pid: 100)))
        actions = machine.handle(.exited(pid: 100, status: .exited(0), note: ""), now: 2.6)
        #expect(actions.last == .exit(code: 0))
        // A second SIGTERM while stopping changes nothing.
        #expect(machine.handle(.terminate(reason: "SIGTERM"), now: 2.7).allSatisfy { if case .log = $0 { true } else { false } })
    }

    @Test func reloadRestartsWorkersOneAtATimeAndLeavesNATSAlone() {
        var machine = Self.machine()
        Self.startAll(&machine)
        var actions = machine.handle(.reload, now: 5)
        #expect(Self.notifications(actions).first == "RELOADING=1\nSTATUS=reloading: restarting workers one at a time")
        var order: [String] = []
        var pid: Int32 = 500
        for step in 0..<4 {
            guard let stop = actions.first(where: { if case .requestStop = $0 { true } else { false } }),
                case .requestStop(let name, let oldPID) = stop
            else {
                Issue.record("step \(step): no worker asked to stop")
                return
            }
            order.append(name)
            #expect(machine.handle(.exited(pid: oldPID, status: .exited(0), note: ""), now: 5) == [
                .log(.info, "\(name) stopped for reload; starting it again"), .spawn(child: name),
            ])
            _ = machine.handle(.spawned(child: name, pid: pid), now: 5)
            pid += 1
            actions = machine.handle(.ready(child: name, detail: ""), now: 5)
        }
        #expect(order == ["broker", "snapshotter", "applier", "capturer"])
        #expect(Self.notifications(actions).contains { $0.hasPrefix("READY=1") })
        #expect(machine.pid(of: "nats") == 100)
        // A reload is not a restart: harmonylite_worker_restarts_total stays put, the reloads are counted apart.
        #expect(machine.restartCounts.first { $0.0 == "broker" }?.1 == 0)
        #expect(machine.childSummaries.first { $0.name == "broker" }.map { ($0.restarts, $0.reloads) } ?? (-1, -1) == (0, 1))
        #expect(machine.childSummaries.first { $0.name == "nats" }?.reloads == 0)
    }

    @Test func memoryLimitIsNamedWhenAWorkerDiesTheWayAllocationFailuresEnd() {
        var settings = WorkerSettings()
        settings.memoryLimit = 64 << 20
        var machine = Self.machine(settings: settings)
        Self.startAll(&machine)
        let actions = machine.handle(.exited(pid: 102, status: .killed(by: 6), note: "peak resident memory 60 MiB"), now: 1)
        #expect(actions.contains { if case .log(.error, let text) = $0 {
            text.contains("SIGABRT") && text.contains("memory_limit = 64 MiB") && text.contains("peak resident memory 60 MiB")
        } else { false } })
    }

    @Test func failedSpawnCountsAsACrash() {
        var machine = Self.machine()
        _ = machine.handle(.start, now: 0)
        let actions = machine.handle(.spawnFailed(child: "nats", reason: "cannot execute /x: No such file"), now: 0)
        #expect(actions.contains { if case .log(.error, let text) = $0 { text.contains("No such file") } else { false } })
        #expect(machine.handle(.tick, now: 1).contains(.spawn(child: "nats")))
    }
}
