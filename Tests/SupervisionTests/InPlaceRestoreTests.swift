import IPC
import Testing

@testable import HarmonyConfig
@testable import Supervision

/// A worker asks for a snapshot restore (exit status `WorkerExitCode.restoreNeeded`): the node restores in
/// place — snapshotter, applier and capturer stop, the snapshotter starts again to restore, the others
/// after it — and never stops or sends STOPPING=1.
@Suite struct InPlaceRestoreTests {
    typealias Tests = SupervisorStateMachineTests
    typealias Machine = SupervisorStateMachine
    typealias Action = Machine.Action

    static let restoreNeeded = ExitStatus.exited(WorkerExitCode.restoreNeeded)

    static func stops(_ actions: [Action]) -> [WorkerRole] {
        actions.compactMap { if case .requestStop(let name, _) = $0 { name } else { nil } }
    }

    /// Runs a whole restore from the applier's exit; the restarted children get `newPIDs`, +1, +2.
    static func runRestore(_ machine: inout Machine, now: Double, newPIDs: Int32) -> [Action] {
        let old = [WorkerRole.snapshotter, .applier, .capturer].map { machine.pid(of: $0)! }
        var all = machine.handle(.exited(pid: old[1], status: restoreNeeded, note: ""), now: now)
        all += machine.handle(.exited(pid: old[2], status: .exited(0), note: ""), now: now)
        all += machine.handle(.exited(pid: old[0], status: .exited(0), note: ""), now: now)
        for (offset, name) in [WorkerRole.snapshotter, .applier, .capturer].enumerated() {
            all += machine.handle(.spawned(child: name, pid: newPIDs + Int32(offset)), now: now)
            all += machine.handle(.ready(child: name, detail: ""), now: now)
        }
        return all
    }

    @Test func theNodeRestoresInPlaceAndKeepsRunning() {
        var machine = Tests.machine()
        Tests.startAll(&machine)
        var actions = machine.handle(.exited(pid: 103, status: Self.restoreNeeded, note: "stream hl-1 lost 4…9"), now: 1)
        #expect(Tests.reports(actions) == [.restoreStarted(askedBy: .applier, note: "stream hl-1 lost 4…9", stopping: [.capturer, .applier, .snapshotter])])
        #expect(Tests.notifications(actions) == [.status(.restoring(askedBy: .applier)), .status(.restoreStopping(.capturer))], "no STOPPING=1")
        #expect(Self.stops(actions) == [WorkerRole.capturer], "the capturer stops first")
        #expect(!actions.contains(.spawn(child: .applier)), "the applier does not restart into the gap")

        actions = machine.handle(.exited(pid: 104, status: .exited(0), note: ""), now: 1.1)
        #expect(Self.stops(actions) == [WorkerRole.snapshotter])
        actions = machine.handle(.exited(pid: 102, status: .exited(0), note: ""), now: 1.2)
        #expect(actions.contains(.spawnToRestore(child: .snapshotter, reason: "applier found changes missing from the streams")))
        #expect(machine.pid(of: .broker) == 101 && machine.pid(of: .nats) == 100, "nats-server and the broker keep running")

        _ = machine.handle(.spawned(child: .snapshotter, pid: 300), now: 1.3)
        // While the snapshotter restores, nothing else starts.
        #expect(machine.handle(.lifeSign(child: .snapshotter), now: 2).isEmpty)
        #expect(!machine.handle(.tick, now: 2).contains { if case .spawn = $0 { true } else { false } })
        actions = machine.handle(.ready(child: .snapshotter, detail: "restored"), now: 3)
        #expect(actions.contains(.spawn(child: .applier)))
        #expect(!actions.contains(.spawn(child: .capturer)))
        _ = machine.handle(.spawned(child: .applier, pid: 301), now: 3)
        actions = machine.handle(.ready(child: .applier, detail: ""), now: 3.1)
        #expect(actions.contains(.spawn(child: .capturer)))
        _ = machine.handle(.spawned(child: .capturer, pid: 302), now: 3.1)
        actions = machine.handle(.ready(child: .capturer, detail: ""), now: 3.2)
        #expect(Tests.notifications(actions) == [.status(.ready(Tests.names))], "READY=1 was sent at start and stays")
        #expect(Tests.reports(actions) == [.ready(.capturer, pid: 302, detail: ""), .restoreComplete])
        #expect(machine.isReady)
        #expect(!machine.hasExited)
        #expect([machine.pid(of: .snapshotter), machine.pid(of: .applier), machine.pid(of: .capturer)] == [300, 301, 302])
    }

    /// A restart of the snapshotter outside a restore (a crash, a reload) is a plain spawn: it is never
    /// asked to restore while the applier and the capturer run.
    @Test func aSnapshotterRestartOutsideARestoreIsNotAskedToRestore() {
        var machine = Tests.machine()
        Tests.startAll(&machine)
        _ = machine.handle(.exited(pid: 102, status: .killed(by: 9), note: ""), now: 1)
        #expect(machine.handle(.tick, now: 2) == [.spawn(child: .snapshotter)])
        _ = machine.handle(.spawned(child: .snapshotter, pid: 200), now: 2)
        _ = machine.handle(.ready(child: .snapshotter, detail: ""), now: 2.1)
        let actions = machine.handle(.reload, now: 3)
        _ = machine.handle(.exited(pid: 101, status: .exited(0), note: ""), now: 3)
        _ = machine.handle(.spawned(child: .broker, pid: 201), now: 3)
        _ = machine.handle(.ready(child: .broker, detail: ""), now: 3)
        #expect(Self.stops(actions) == [WorkerRole.broker])
        #expect(machine.handle(.exited(pid: 200, status: .exited(0), note: ""), now: 3.1).contains(.spawn(child: .snapshotter)))
    }

    /// The snapshotter crashes while it restores: it comes back after the backoff, still asked to restore,
    /// and the applier and the capturer wait for it.
    @Test func aRestorerThatCrashesWhileRestoringIsAskedAgain() {
        var machine = Tests.machine()
        Tests.startAll(&machine)
        _ = machine.handle(.exited(pid: 103, status: Self.restoreNeeded, note: ""), now: 1)
        _ = machine.handle(.exited(pid: 104, status: .exited(0), note: ""), now: 1)
        _ = machine.handle(.exited(pid: 102, status: .exited(0), note: ""), now: 1)
        _ = machine.handle(.spawned(child: .snapshotter, pid: 300), now: 1)
        let crash = machine.handle(.exited(pid: 300, status: .killed(by: 9), note: ""), now: 2)
        #expect(Tests.notifications(crash) == [.status(.degraded(.snapshotter, restartIn: 0.25, ChildEnd(.exited(.killed(by: 9)), pid: 300)))])
        #expect(machine.handle(.tick, now: 3) == [.spawnToRestore(child: .snapshotter, reason: "applier found changes missing from the streams")])
        _ = machine.handle(.spawned(child: .snapshotter, pid: 301), now: 3)
        #expect(machine.handle(.ready(child: .snapshotter, detail: ""), now: 4).contains(.spawn(child: .applier)))
    }

    /// A worker that already crashed (waiting for its restart) or that dies while the restore stops it is
    /// not restarted on its own: the restore starts it, in order.
    @Test func workersThatDieDuringTheStopAreStartedByTheRestore() {
        var machine = Tests.machine()
        Tests.startAll(&machine)
        _ = machine.handle(.exited(pid: 104, status: .killed(by: 9), note: ""), now: 1)
        var actions = machine.handle(.exited(pid: 103, status: Self.restoreNeeded, note: ""), now: 1.1)
        #expect(Self.stops(actions) == [WorkerRole.snapshotter], "the capturer waiting for its restart is not started again")
        actions = machine.handle(.exited(pid: 102, status: .killed(by: 11), note: ""), now: 1.2)
        #expect(actions.contains(.spawnToRestore(child: .snapshotter, reason: "applier found changes missing from the streams")))
        #expect(!machine.handle(.tick, now: 5).contains(.spawn(child: .capturer)))
    }

    /// The snapshotter crashed and waits for its restart when the applier asks for a restore: it is not
    /// started on its own (it would start under the capturer, which the restore is still stopping), but
    /// asked to restore once the capturer is gone.
    @Test func aRestorerWaitingToRestartIsNotStartedWhileTheRestoreStops() {
        var machine = Tests.machine()
        Tests.startAll(&machine)
        _ = machine.handle(.exited(pid: 102, status: .killed(by: 9), note: ""), now: 1)
        #expect(Self.stops(machine.handle(.exited(pid: 103, status: Self.restoreNeeded, note: ""), now: 1.1)) == [WorkerRole.capturer])
        let spawns = machine.handle(.tick, now: 30).filter { if case .spawn = $0 { true } else if case .spawnToRestore = $0 { true } else { false } }
        #expect(spawns.isEmpty, "started while the capturer still runs: \(spawns)")
        #expect(
            machine.handle(.exited(pid: 104, status: .exited(0), note: ""), now: 31)
                == [
                    .report(.stoppedForRestore(.capturer, pid: 104, .exited(0))),
                    .notify(.status(.restorerRestoring(.snapshotter))),
                    .spawnToRestore(child: .snapshotter, reason: "applier found changes missing from the streams"),
                ])
    }

    /// The snapshotter does not stop in time: it is killed, and the restore goes on.
    @Test func aRestorerThatDoesNotStopIsKilled() {
        var settings = WorkerSettings()
        settings.stopTimeout = 1000
        var machine = Tests.machine(settings: settings)
        Tests.startAll(&machine)
        _ = machine.handle(.exited(pid: 103, status: Self.restoreNeeded, note: ""), now: 1)
        _ = machine.handle(.exited(pid: 104, status: .exited(0), note: ""), now: 1)
        #expect(machine.handle(.tick, now: 2.1).contains(.kill(pid: 102)))
        #expect(
            machine.handle(.exited(pid: 102, status: .killed(by: 9), note: ""), now: 2.2)
                .contains(.spawnToRestore(child: .snapshotter, reason: "applier found changes missing from the streams")))
    }

    /// A restore that does not cure the applier is asked for again, up to restart_intensity times within
    /// the period; then the node stops with status 1 instead of looping.
    @Test func restoresThatDoNotCureStopTheNodePastTheIntensity() {
        var settings = WorkerSettings()
        settings.restartIntensity = 2
        var machine = Tests.machine(settings: settings)
        Tests.startAll(&machine)
        var now = 1.0
        for round in 0..<2 {
            let actions = Self.runRestore(&machine, now: now, newPIDs: 300 + 10 * Int32(round))
            #expect(actions.contains { if case .spawnToRestore = $0 { true } else { false } })
            #expect(machine.isReady)
            now += 1
        }
        let applier = machine.pid(of: .applier)!
        let actions = machine.handle(.exited(pid: applier, status: Self.restoreNeeded, note: ""), now: now)
        #expect(Tests.notifications(actions).first == .stopping(because: .restoreFailed(.applier)))
        #expect(Tests.reports(actions) == [.restoresExhausted(askedBy: .applier, note: "", limit: RestartLimit(intensity: 2, period: 60))])
    }

    /// A stop (SIGTERM) during the restore drains what runs and exits 0; nothing is started again.
    @Test func terminateDuringTheRestoreDrains() {
        var machine = Tests.machine()
        Tests.startAll(&machine)
        _ = machine.handle(.exited(pid: 103, status: Self.restoreNeeded, note: ""), now: 1)
        var actions = machine.handle(.terminate(reason: .sigterm), now: 1.1)
        #expect(Tests.notifications(actions).first == .stopping())
        actions = machine.handle(.exited(pid: 104, status: .exited(0), note: ""), now: 1.2)
        #expect(!actions.contains { if case .spawnToRestore = $0 { true } else { false } })
        #expect(Self.stops(actions) == [WorkerRole.snapshotter])
        for pid in [102, 101, 100] {
            actions = machine.handle(.exited(pid: Int32(pid), status: .exited(0), note: ""), now: 1.3)
        }
        #expect(actions.last == .exit(code: 0))
    }

    /// A reload asked for while a restore runs is not lost: it waits for the restore's end, then restarts
    /// every worker as a reload does, and the node ends up with all of them running.
    @Test func aReloadDuringARestoreIsDeferredUntilItEnds() {
        var machine = Tests.machine()
        Tests.startAll(&machine)
        _ = machine.handle(.exited(pid: 103, status: Self.restoreNeeded, note: ""), now: 1)
        var actions = machine.handle(.reload, now: 1.1)
        #expect(actions == [.report(.reloadDeferred)], "nothing happens during the restore")
        actions = machine.handle(.exited(pid: 104, status: .exited(0), note: ""), now: 1.2)
        actions = machine.handle(.exited(pid: 102, status: .exited(0), note: ""), now: 1.3)
        #expect(actions.contains { if case .spawnToRestore = $0 { true } else { false } })
        for (offset, name) in [WorkerRole.snapshotter, .applier, .capturer].enumerated() {
            _ = machine.handle(.spawned(child: name, pid: 300 + Int32(offset)), now: 2)
            actions = machine.handle(.ready(child: name, detail: ""), now: 2)
        }
        #expect(Tests.notifications(actions).contains(.reloading(.reloading)), "the deferred reload starts once the restore is over")
        let workers: [WorkerRole] = [.broker, .snapshotter, .applier, .capturer]
        #expect(Tests.reports(actions).suffix(3) == [.restoreComplete, .deferredReloadStarting, .reloadStarted(workers: workers)])
        #expect(Self.stops(actions) == [WorkerRole.broker])
        // The reload runs to its end: each worker stops and starts again, one at a time.
        var pid: Int32 = 400
        for (name, old) in [(WorkerRole.broker, 101), (WorkerRole.snapshotter, 300), (WorkerRole.applier, 301), (WorkerRole.capturer, 302)] {
            actions = machine.handle(.exited(pid: Int32(old), status: .exited(0), note: ""), now: 3)
            #expect(actions.contains(.spawn(child: name)), "\(name) restarts for the reload (a plain spawn)")
            _ = machine.handle(.spawned(child: name, pid: pid), now: 3)
            actions = machine.handle(.ready(child: name, detail: ""), now: 3)
            pid += 1
        }
        #expect(Tests.notifications(actions) == [.ready(.ready(Tests.names))])
        #expect(machine.isReady)
        #expect(Tests.names.allSatisfy { machine.pid(of: $0) != nil }, "every child runs")
    }

    /// A restore asked for in the middle of a reload (the applier meets a gap while the reload is stopping
    /// the snapshotter): the snapshotter's reload stop becomes the restore's, the restore runs to its end
    /// and starts the applier and the capturer again, and the interrupted reload is done after it. Before,
    /// the snapshotter came back as a plain reload restart, the restore waited for a stop that never came,
    /// and the applier and the capturer stayed stopped until the node was restarted.
    @Test func aRestoreDuringAReloadStartsEveryChildAgainAndFinishesTheReload() {
        var machine = Tests.machine()
        Tests.startAll(&machine)
        _ = machine.handle(.reload, now: 1)
        _ = machine.handle(.exited(pid: 101, status: .exited(0), note: ""), now: 1.1)
        _ = machine.handle(.spawned(child: .broker, pid: 201), now: 1.1)
        var actions = machine.handle(.ready(child: .broker, detail: ""), now: 1.2)
        #expect(Self.stops(actions) == [WorkerRole.snapshotter])
        actions = machine.handle(.exited(pid: 103, status: Self.restoreNeeded, note: ""), now: 1.3)
        #expect(Self.stops(actions) == [WorkerRole.capturer])
        actions = machine.handle(.exited(pid: 104, status: .exited(0), note: ""), now: 1.4)
        actions = machine.handle(.exited(pid: 102, status: .exited(0), note: ""), now: 1.5)
        #expect(
            actions.contains(.spawnToRestore(child: .snapshotter, reason: "applier found changes missing from the streams")),
            "the snapshotter stopped by the reload starts to restore")
        for (offset, name) in [WorkerRole.snapshotter, .applier, .capturer].enumerated() {
            _ = machine.handle(.spawned(child: name, pid: 300 + Int32(offset)), now: 2)
            actions = machine.handle(.ready(child: name, detail: ""), now: 2)
        }
        #expect(machine.pid(of: .applier) == 301 && machine.pid(of: .capturer) == 302, "the applier and the capturer run again")
        #expect(Tests.notifications(actions).contains(.reloading(.reloading)), "the interrupted reload is done again")
        var pid: Int32 = 400
        for (name, old) in [(WorkerRole.broker, 201), (WorkerRole.snapshotter, 300), (WorkerRole.applier, 301), (WorkerRole.capturer, 302)] {
            actions = machine.handle(.exited(pid: Int32(old), status: .exited(0), note: ""), now: 3)
            _ = machine.handle(.spawned(child: name, pid: pid), now: 3)
            actions = machine.handle(.ready(child: name, detail: ""), now: 3)
            pid += 1
        }
        #expect(machine.isReady)
        #expect(Tests.names.allSatisfy { machine.pid(of: $0) != nil }, "every child runs")
    }

    /// A restore asked for during the start (the applier met the gap before the capturer started) ends
    /// with the READY=1 the start owes; a reload during the restore waits for its end.
    @Test func aRestoreDuringTheStartSendsReadyWhenOver() {
        var machine = Tests.machine()
        _ = machine.handle(.start, now: 0)
        for (index, name) in [WorkerRole.nats, .broker, .snapshotter, .applier].enumerated() {
            _ = machine.handle(.spawned(child: name, pid: Int32(100 + index)), now: 0)
            _ = machine.handle(.ready(child: name, detail: ""), now: 0)
        }
        var actions = machine.handle(.exited(pid: 103, status: Self.restoreNeeded, note: ""), now: 1)
        #expect(Self.stops(actions) == [WorkerRole.snapshotter])
        #expect(machine.handle(.reload, now: 1) == [.report(.reloadDeferred)])
        actions = machine.handle(.exited(pid: 102, status: .exited(0), note: ""), now: 1)
        #expect(actions.contains { if case .spawnToRestore = $0 { true } else { false } })
        for (offset, name) in [WorkerRole.snapshotter, .applier, .capturer].enumerated() {
            _ = machine.handle(.spawned(child: name, pid: 300 + Int32(offset)), now: 2)
            actions = machine.handle(.ready(child: name, detail: ""), now: 2)
        }
        #expect(Tests.notifications(actions).first == .ready(.ready(Tests.names)), "the READY=1 the start owes, then the deferred reload")
    }
}
