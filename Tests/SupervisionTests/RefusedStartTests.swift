import IPC
import Testing

@testable import HarmonyConfig
@testable import Supervision

/// A worker refuses the start (`WorkerExitCode.refused`): not restarted; the node stops with
/// `SupervisorExitCode.refused`, which the unit keeps systemd from restarting.
@Suite struct RefusedStartTests {
    typealias Tests = SupervisorStateMachineTests

    @Test func aRefusedStartStopsTheNodeWithStatus78AndRestartsNothing() {
        var machine = Tests.machine()
        _ = machine.handle(.start, now: 0)
        _ = machine.handle(.spawned(child: .nats, pid: 100), now: 0)
        _ = machine.handle(.ready(child: .nats, detail: ""), now: 0)
        _ = machine.handle(.spawned(child: .broker, pid: 101), now: 0)
        var actions = machine.handle(.exited(pid: 101, status: .exited(WorkerExitCode.refused), note: "stopping: node_id 2 is already used"), now: 1)
        #expect(Tests.notifications(actions).contains(.status(.refused(.broker, note: "stopping: node_id 2 is already used"))), "\(actions)")
        #expect(Tests.reports(actions) == [.refused(.broker, note: "stopping: node_id 2 is already used")])
        #expect(!actions.contains(.spawn(child: .broker)), "not restarted")
        #expect(actions.contains(.requestStop(child: .nats, pid: 100)), "the node stops")
        actions = machine.handle(.exited(pid: 100, status: .exited(0), note: ""), now: 1.2)
        #expect(actions.contains(.exit(code: SupervisorExitCode.refused)) && SupervisorExitCode.refused == 78, "\(actions)")
        #expect(machine.handle(.tick, now: 30).allSatisfy { if case .spawn = $0 { false } else { true } })
    }
}
