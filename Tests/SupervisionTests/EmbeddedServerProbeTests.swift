import TestSupport
import Testing

@testable import HarmonyConfig
@testable import Supervision

@Suite struct EmbeddedServerProbeTests {
    typealias Machine = SupervisorStateMachine

    /// nats (probed, heartbeat_timeout 20 s) and one worker; both started and ready at `now`.
    static func machine(now: Double = 0) -> Machine {
        var nats = WorkerSettings()
        nats.heartbeatTimeout = 20000
        let specs = [
            ChildSpec(role: .nats, speaksControlProtocol: false, settings: nats, livenessProbed: true),
            ChildSpec(role: .broker, speaksControlProtocol: true, settings: WorkerSettings()),
        ]
        var machine = Machine(children: specs, watchdogInterval: nil, randomUnit: { 0.5 })
        _ = machine.handle(.start, now: now)
        _ = machine.handle(.spawned(child: .nats, pid: 100), now: now)
        _ = machine.handle(.ready(child: .nats, detail: ""), now: now)
        _ = machine.handle(.spawned(child: .broker, pid: 101), now: now)
        _ = machine.handle(.ready(child: .broker, detail: ""), now: now)
        return machine
    }

    @Test func aProbedServerSilentForItsTimeoutOnceReadyIsKilledAndRestarted() {
        var machine = Self.machine()
        for second in stride(from: 1.0, through: 19.0, by: 1.0) {
            _ = machine.handle(.lifeSign(child: .broker), now: second)
            #expect(!machine.handle(.tick, now: second).contains(.kill(pid: 100)), "not before its timeout")
        }
        _ = machine.handle(.lifeSign(child: .broker), now: 20)
        let actions = machine.handle(.tick, now: 20)
        #expect(actions.contains(.kill(pid: 100)))
        #expect(actions.contains(.report(.unresponsive(.nats, pid: 100, silence: 20, signs: .probeAnswers))))
        #expect(!actions.contains(.kill(pid: 101)), "the workers are left alone")
        let exit = machine.handle(.exited(pid: 100, status: .killed(by: 9), note: ""), now: 20.1)
        let limit = RestartLimit(intensity: 5, period: 60)
        #expect(exit.contains(.report(.restarting(.nats, ChildEnd(.killedUnresponsive, pid: 100), delay: 0.25, attempt: 1, limit: limit))))
        #expect(machine.handle(.tick, now: 21).contains(.spawn(child: .nats)))
    }

    @Test func answersKeepAProbedServerAliveAndItOwesNoneBeforeItIsReady() {
        var machine = Self.machine()
        for second in stride(from: 5.0, through: 60.0, by: 5.0) {
            _ = machine.handle(.lifeSign(child: .nats), now: second)
            _ = machine.handle(.lifeSign(child: .broker), now: second)
            #expect(!machine.handle(.tick, now: second).contains { if case .kill = $0 { true } else { false } })
        }
        // Starting (recovering a big store, say): no probe answers are expected yet.
        var starting = Machine(
            children: [ChildSpec(role: .nats, speaksControlProtocol: false, settings: WorkerSettings(), livenessProbed: true)],
            watchdogInterval: nil, randomUnit: { 0.5 })
        _ = starting.handle(.start, now: 0)
        _ = starting.handle(.spawned(child: .nats, pid: 100), now: 0)
        #expect(starting.handle(.tick, now: 600).isEmpty)
        #expect(starting.nextDeadline == nil)
    }

    @Test func aSilentProbedServerDoesNotHoldBackTheWatchdog() {
        var nats = WorkerSettings()
        nats.heartbeatTimeout = 20000
        var machine = Machine(
            children: [ChildSpec(role: .nats, speaksControlProtocol: false, settings: nats, livenessProbed: true)],
            watchdogInterval: 15, randomUnit: { 0.5 })
        _ = machine.handle(.start, now: 0)
        _ = machine.handle(.spawned(child: .nats, pid: 100), now: 0)
        _ = machine.handle(.ready(child: .nats, detail: ""), now: 0)
        // The supervisor restarts it at 20 s itself; withheld pings would let WatchdogSec=30s kill the node first.
        #expect(machine.handle(.tick, now: 15).contains(.notify(.watchdog)))
    }

    @Test func probesGoFourTimesPerTimeoutAndAHungOneIsAbandoned() {
        var probe = EmbeddedServerProbe(heartbeatTimeout: 20, now: 0)
        #expect(probe.due(now: 0) == (true, false))
        #expect(probe.due(now: 1) == (false, false), "one in flight")
        probe.finished()
        #expect(probe.due(now: 4.9) == (false, false))
        #expect(probe.nextDeadline == 5)
        #expect(probe.due(now: 5) == (true, false))
        // Unanswered: abandoned after half the timeout, and another goes out.
        #expect(probe.due(now: 14.9) == (false, false))
        #expect(probe.due(now: 15) == (true, true))
    }

    static func response(_ status: String, _ body: String) -> [UInt8] {
        Array("HTTP/1.0 \(status)\r\nContent-Type: application/json\r\n\r\n\(body)".utf8)
    }

    @Test func answersMeanAliveUnlessJetStreamIsDisabledOrItIsNotHTTP() {
        let jsz = #"{"server_id": "N1", "config": {"max_storage": 268435456}, "meta_cluster": {"leader": "n2", "cluster_size": 3}, "streams": 1}"#
        #expect(EmbeddedServerProbe.verdict(response: Self.response("200 OK", jsz)) == .alive)
        #expect(EmbeddedServerProbe.verdict(response: Self.response("200 OK", #"{"server_id": "N1", "disabled": true}"#)) == .jetStreamDisabled)
        #expect(EmbeddedServerProbe.verdict(response: Self.response("200 OK", #"{"disabled": false}"#)) == .alive)
        #expect(EmbeddedServerProbe.verdict(response: Self.response("404 Not Found", "404 page not found")) == .alive, "it answered")
        #expect(EmbeddedServerProbe.verdict(response: Self.response("200 OK", "not json")) == .alive)
        for garbage in [[], Array("HTTP/1.0 200 OK\r\nContent-Type: app".utf8), Array("SSH-2.0-OpenSSH\r\n\r\n".utf8), Array("HTTP/1.0 abc\r\n\r\n".utf8)] {
            guard case .malformed = EmbeddedServerProbe.verdict(response: garbage) else {
                Issue.record("\(garbage.count) bytes of garbage counted as an answer")
                continue
            }
        }
    }

    @Test func theEmbeddedServerListensForTheProbeOnLoopbackOnly() {
        let text = EmbeddedServerConfig.render(Configuration(dbPath: "/d/x.db", nodeID: 1), runDirectory: "/run/x")
        #expect(text.contains("\nhttp: \"127.0.0.1:-1\"\n"))
        #expect(WorkerSettings.defaults[.nats]?.heartbeatTimeout == WorkerSettings.natsHeartbeatTimeout)
        #expect(WorkerSettings.defaults[.broker]?.heartbeatTimeout == 5000)
    }
}
