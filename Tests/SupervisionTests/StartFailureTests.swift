import IPC
import Testing

@testable import HarmonyConfig
@testable import Supervision

/// The embedded server cannot start with this configuration (a port another process holds, a cluster without
/// routes): the node stops with `SupervisorExitCode.configuration` at once instead of restarting the server
/// until its budget runs out (exit 1, which systemd restarts into the same failure).
@Suite struct StartFailureTests {
    typealias Tests = SupervisorStateMachineTests

    static let clientPortInUse = #"Error listening on port: 127.0.0.1:24223, "listen tcp 127.0.0.1:24223: bind: address already in use""#
    static let routePortInUse = "Error listening on router port: 6222 - listen tcp 0.0.0.0:6222: bind: address already in use"
    static let leafPortInUse = "Error listening on leafnode port: 7422 - listen tcp [::1]:7422: bind: address already in use"
    static let noRoutes = "Can't start JetStream: JetStream cluster requires configured routes or solicited leafnode for the system account"

    @Test func nats2_9sFatalLinesAreRecognised() {
        #expect(EmbeddedServerStartFailure(lastWords: Self.clientPortInUse) == .addressInUse(.clients, address: "127.0.0.1:24223", port: 24223))
        #expect(EmbeddedServerStartFailure(lastWords: Self.routePortInUse) == .addressInUse(.routes, address: "0.0.0.0:6222", port: 6222))
        #expect(EmbeddedServerStartFailure(lastWords: Self.leafPortInUse) == .addressInUse(.leafNodes, address: "[::1]:7422", port: 7422))
        #expect(EmbeddedServerStartFailure(lastWords: Self.noRoutes) == .clusterWithoutRoutes)
        // Anything else is a crash, restarted as one.
        for other in [
            "Can't start JetStream: could not create storage directory - mkdir /x: permission denied",
            #"Error listening on port: 127.0.0.1:4222, "listen tcp 127.0.0.1:4222: bind: permission denied""#,
            "Error listening on port: x, listen tcp 127.0.0.1:99999: bind: address already in use", "", "address already in use",
        ] {
            #expect(EmbeddedServerStartFailure(lastWords: other) == nil, "\(other)")
        }
    }

    @Test func theProblemNamesThePortTheHolderAndTheSettingToChange() {
        let failure = EmbeddedServerStartFailure(lastWords: Self.clientPortInUse)!
        let text = failure.problem(holder: "python3, pid 14870")
        #expect(text.contains("port 24223 (127.0.0.1:24223) is in use by another process (python3, pid 14870)"), "\(text)")
        #expect(text.contains("nats.bind_address"))
        #expect(failure.problem(holder: nil).contains("in use by another process:"))
        #expect(EmbeddedServerStartFailure(lastWords: Self.routePortInUse)!.problem(holder: nil).contains("-cluster-addr"))
        #expect(EmbeddedServerStartFailure.clusterWithoutRoutes.problem(holder: nil).contains("-cluster-peers"))
    }

    @Test func listeningSocketsAreFoundByPortInProcNetTCP() {
        let table = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 0100007F:5EDF 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 100 0 0 10 0
               1: 0100007F:5EDF 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 222222 1 0000000000000000 20 4 30 10 -1
               2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333333 1 0000000000000000 100 0 0 10 0
               3: garbage
            """
        #expect(ListeningSockets.inodes(procNetTCP: table, port: 24287) == [123456], "listening only, not the connection")
        #expect(ListeningSockets.inodes(procNetTCP: table, port: 8080) == [333333])
        #expect(ListeningSockets.inodes(procNetTCP: table, port: 4222).isEmpty)
        #expect(ListeningSockets.inodes(procNetTCP: "", port: 4222).isEmpty)
    }

    /// Starts server `pid` and ends it with `said`; returns what `startFailed` says.
    static func failStart(_ machine: inout EmbeddedServerMachine, pid: Int32, _ said: String?, now: Double) -> EmbeddedServerStartFailure? {
        _ = machine.handle(.starting, now: now)
        _ = machine.handle(.spawned(pid: pid), now: now)
        let failure = machine.startFailed(pid: pid, lastWords: said)
        _ = machine.handle(.exited(pid: pid), now: now)
        return failure
    }

    @Test func theSameFailureOfTheFirstServersThreeTimesInARowFailsTheStart() {
        var embedded = EmbeddedServerMachineTests.machine()
        #expect(EmbeddedServerMachine.startAttempts == 3)
        #expect(Self.failStart(&embedded, pid: 100, Self.clientPortInUse, now: 0) == nil, "a port held for a moment is tried again")
        #expect(Self.failStart(&embedded, pid: 101, "panic: runtime error", now: 1) == nil, "another failure starts the count again")
        #expect(Self.failStart(&embedded, pid: 102, Self.clientPortInUse, now: 2) == nil)
        #expect(Self.failStart(&embedded, pid: 103, Self.routePortInUse, now: 3) == nil, "a different port starts it again too")
        #expect(Self.failStart(&embedded, pid: 104, Self.routePortInUse, now: 4) == nil)
        #expect(embedded.startFailed(pid: 4242, lastWords: nil) == nil, "another process's end does not reset the count")
        #expect(Self.failStart(&embedded, pid: 105, Self.routePortInUse, now: 5) == EmbeddedServerStartFailure(lastWords: Self.routePortInUse))
        // Not the server that runs: another pid says nothing.
        _ = embedded.handle(.starting, now: 6)
        _ = embedded.handle(.spawned(pid: 106), now: 6)
        #expect(embedded.startFailed(pid: 999, lastWords: Self.routePortInUse) == nil)
    }

    @Test func aSmallerRestartBudgetGivesUpSooner() {
        var embedded = EmbeddedServerMachineTests.machine()
        _ = embedded.handle(.starting, now: 0)
        _ = embedded.handle(.spawned(pid: 100), now: 0)
        #expect(embedded.startFailed(pid: 100, lastWords: Self.clientPortInUse, attempts: 1) != nil, "restart_intensity 0: the first failure")
    }

    @Test func onceAServerWasReadyAFailingRestartIsACrash() {
        var embedded = EmbeddedServerMachineTests.machine()
        _ = embedded.handle(.starting, now: 0)
        _ = embedded.handle(.spawned(pid: 100), now: 0)
        _ = embedded.handle(.portsFile(pid: 100, clientPort: 24223, monitoring: [EmbeddedServerMachineTests.monitoring]), now: 0.1)
        _ = embedded.handle(.exited(pid: 100), now: 1)
        for pid: Int32 in 101...104 { #expect(Self.failStart(&embedded, pid: pid, Self.clientPortInUse, now: Double(pid)) == nil) }
    }

    @Test func aMisconfiguredServerStopsTheNodeWithStatus2AndIsNotRestarted() {
        var machine = Tests.machine()
        _ = machine.handle(.start, now: 0)
        _ = machine.handle(.spawned(child: .nats, pid: 100), now: 0)
        let actions = machine.handle(.misconfigured(pid: 100, status: .exited(1), note: "said", problem: "port 4222 is in use"), now: 0.1)
        #expect(Tests.reports(actions).first == .misconfigured(.nats, problem: "port 4222 is in use", ChildEnd(.exited(.exited(1)), pid: 100, note: "said")))
        #expect(Tests.notifications(actions).contains(.status(.misconfigured(.nats, problem: "port 4222 is in use"))))
        #expect(Tests.notifications(actions).contains(.stopping(because: .misconfigured(.nats))))
        #expect(actions.contains(.exit(code: SupervisorExitCode.configuration)) && SupervisorExitCode.configuration == 2, "\(actions)")
        #expect(!actions.contains(.spawn(child: .nats)))
        #expect(machine.handle(.tick, now: 30).allSatisfy { if case .spawn = $0 { false } else { true } })
        let report = SupervisorReport.misconfigured(.nats, problem: "port 4222 is in use", ChildEnd(.exited(.exited(1)), pid: 100))
        #expect(report.level == .error && report.metadata["exit_status"] == "2" && report.metadata["problem"] == "port 4222 is in use")
    }

    @Test func aMisconfiguredExitOnceTheNodeRanIsACrash() {
        var machine = Tests.machine()
        Tests.startAll(&machine)
        let actions = machine.handle(.misconfigured(pid: 100, status: .exited(1), note: "", problem: "port 4222 is in use"), now: 1)
        #expect(Tests.reports(actions).contains { if case .restarting(.nats, _, _, _, _) = $0 { true } else { false } }, "\(actions)")
        #expect(!actions.contains { if case .exit = $0 { true } else { false } })
    }

    @Test func clusterAddressWithoutPeersIsAConfigurationError() throws {
        var config = Configuration(dbPath: "/tmp/node.db", nodeID: 1)
        config.clusterAddress = "127.0.0.1:6222"
        do {
            try config.checkCanStart()
            Issue.record("-cluster-addr without -cluster-peers was accepted")
        } catch {
            #expect(error.key == "-cluster-peers" && "\(error)".contains("-cluster-addr 127.0.0.1:6222"), "\(error)")
        }
        config.clusterPeers = ["nats://127.0.0.1:6223"]
        try config.checkCanStart()
        config.clusterPeers = []
        config.nats.serverConfig = "/etc/nats/extra.conf"
        try config.checkCanStart()  // it may add routes
    }
}
