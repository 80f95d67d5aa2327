import HarmonyConfig
import Logging
import Testing

@testable import Supervision

/// The supervisor's reports as log lines: a constant message per case (what varies is metadata), the
/// metadata keys operators and the shipped tests rely on, and systemd's notify text.
@Suite struct SupervisorReportRenderingTests {
    static let limit = RestartLimit(intensity: 5, period: 60)

    /// Every case twice, with different values, and the metadata keys each renders.
    static func samples(_ role: WorkerRole, pid: Int32, text: String) -> [(SupervisorReport, Logger.Level, Set<String>)] {
        let end = ChildEnd(.exited(.exited(pid)), note: text)
        return [
            (.started(role, pid: pid), .debug, ["child", "child_pid"]),
            (.ready(role, pid: pid, detail: text), .info, ["child", "child_pid", "detail"]),
            (.allReady, .info, []),
            (.stopRequested(reason: .sleepTimeout(seconds: 30), alreadyStopping: false), .info, ["reason"]),
            (.stopRequested(reason: .sigterm, alreadyStopping: true), .info, ["reason"]),
            (.stopped(role, pid: pid, .exited(pid)), .info, ["child", "child_pid", "status"]),
            (.endedWhileStopping(role, end), .warning, ["child", "status", "note"]),
            (.stopTimedOut(role, pid: pid, timeout: Double(pid)), .warning, ["child", "child_pid", "stop_timeout_s", "config"]),
            (.allStopped, .info, []),
            (
                .restarting(role, end, delay: Double(pid), attempt: Int(pid), limit: limit), .error,
                ["child", "status", "note", "restart_in_s", "restart", "restart_intensity", "restart_period_s", "config"]
            ),
            (.gaveUp(role, end, limit: limit), .error, ["child", "status", "note", "restart_intensity", "restart_period_s", "config"]),
            (.refused(role, note: text), .error, ["child", "note", "exit_status"]),
            (.unresponsive(role, pid: pid, silence: 5, signs: .heartbeats), .error, ["child", "child_pid", "silent_s", "config"]),
            (.unresponsive(role, pid: pid, silence: 5, signs: .probeAnswers), .error, ["child", "child_pid", "silent_s", "config"]),
            (.watchdogWithheld(late: role), .warning, ["child"]),
            (.reloadStarted(workers: [role]), .info, ["workers"]),
            (.stoppedForReload(role), .info, ["child"]),
            (.reloadComplete, .info, []),
            (.reloadDeferred, .info, []),
            (.reloadIgnored(while: pid == 1 ? .starting : .stopping), .warning, ["phase"]),
            (.restoreStarted(askedBy: role, note: text, stopping: [role]), .error, ["child", "note", "restarting"]),
            (.restoreImpossible(askedBy: role, note: text), .error, ["child", "note"]),
            (.restoresExhausted(askedBy: role, note: text, limit: limit), .error, ["child", "note", "restart_intensity", "restart_period_s", "config"]),
            (.stoppedForRestore(role, pid: pid, .killed(by: pid)), .info, ["child", "child_pid", "status"]),
            (.endedWhileRestoreStops(role, end), .warning, ["child", "status", "note"]),
            (.restoreComplete, .info, []),
            (.deferredReloadStarting, .info, []),
        ]
    }

    @Test func everyReportHasAConstantMessageItsLevelAndItsMetadataKeys() {
        let one = Self.samples(.broker, pid: 1, text: "first words")
        let two = Self.samples(.capturer, pid: 2, text: "other words")
        #expect(one.count == two.count)
        for ((first, level, keys), (second, _, _)) in zip(one, two) {
            #expect(first.message == second.message, "the message of \(first) does not depend on its values")
            #expect(first.level == level, "\(first)")
            #expect(Set(first.metadata.keys) == keys, "\(first): \(first.metadata)")
            for value in ["broker", "first words"] { #expect(!"\(first.message)".contains(value), "\(first)") }
        }
        // The messages tell the events apart.
        #expect(Set(one.map { "\($0.0.message)" }).count == one.count, "one message per case (and kind of stop request or life sign)")
    }

    @Test func metadataCarriesTheValuesAndTheKeyToChange() {
        let end = ChildEnd(.exited(.killed(by: 6)), note: "peak resident memory 60 MiB", memoryLimit: 64 << 20)
        let restarting = SupervisorReport.restarting(.capturer, end, delay: 0.26, attempt: 2, limit: Self.limit).metadata
        #expect(restarting["child"] == "capturer")
        #expect(restarting["status"] == "was killed by signal 6 (SIGABRT)")
        #expect(restarting["note"] == "peak resident memory 60 MiB")
        #expect(restarting["restart_in_s"] == "0.3" && restarting["restart"] == "2")
        #expect(restarting["restart_intensity"] == "5" && restarting["restart_period_s"] == "60")
        #expect(restarting["config"] == "[workers.capturer] restart_intensity, restart_period_seconds")
        #expect(restarting["memory_limit"].map { "\($0)".hasPrefix("64 MiB (RLIMIT_AS)") && "\($0)".contains("[workers.capturer] memory_limit") } == true)
        let hung = SupervisorReport.unresponsive(.applier, pid: 7, silence: 5.04, signs: .heartbeats).metadata
        #expect(hung == ["child": "applier", "child_pid": "7", "silent_s": "5.0", "config": "[workers.applier] heartbeat_timeout"])
        #expect(SupervisorReport.refused(.broker, note: "").metadata == ["child": "broker", "exit_status": "78"])
        let spawnFailed = SupervisorReport.gaveUp(.nats, ChildEnd(.couldNotStart(reason: "No such file")), limit: Self.limit).metadata
        #expect(spawnFailed["status"] == "could not be started: No such file")
        #expect(spawnFailed["note"] == nil)
    }

    @Test func systemdStatesRenderAsNotifyAssignments() {
        let roles: [WorkerRole] = [.nats, .broker]
        #expect(SystemdState.ready(.ready(roles)).notification == "READY=1\nSTATUS=ready: nats, broker running")
        #expect(SystemdState.reloading(.reloading).notification == "RELOADING=1\nSTATUS=reloading: restarting workers one at a time")
        #expect(SystemdState.stopping().notification == "STOPPING=1\nSTATUS=stopping")
        #expect(SystemdState.stopping(because: .refused(.broker)).notification == "STOPPING=1\nSTATUS=stopping: broker refused the start")
        #expect(
            SystemdState.status(.stoppingChild(.nats, because: .gaveUp(.capturer, ChildEnd(.exited(.exited(1)), pid: 7)))).notification
                == "STATUS=stopping nats: capturer ended more often than its restart budget allows (exited with status 1)")
        #expect(
            SystemdState.status(.stoppingChild(.nats, because: .restoreFailed(.applier))).notification
                == "STATUS=stopping nats: applier found changes missing that no snapshot restore could bring")
        #expect(SystemdState.watchdog.notification == "WATCHDOG=1")
        #expect(
            SystemdState.extendTimeout(microseconds: 60_000_000, .startWaiting(for: [.applier, .capturer], seconds: 20)).notification
                == "EXTEND_TIMEOUT_USEC=60000000\nSTATUS=starting: still waiting for applier, capturer to be ready (20 s)")
        #expect(
            SystemdState.status(.degraded(.broker, restartIn: 0.25, ChildEnd(.exited(.exited(1)), note: "stopping: x"))).notification
                == "STATUS=degraded: broker restarting in 0.3 s (exited with status 1; stopping: x)")
        #expect(SystemdState.status(.refused(.snapshotter, note: "no snapshot")).notification == "STATUS=refused: snapshotter; no snapshot")
        #expect(SystemdState.status(.restoring(askedBy: .applier)).notification == "STATUS=restoring: applier found changes missing from the streams")
        #expect(SystemdState.status(.restoreStopping(.capturer)).notification == "STATUS=restoring: stopping capturer")
        #expect(SystemdState.status(.stoppingChild(.nats)).notification == "STATUS=stopping nats")
    }

    /// What a worker said is one line of bounded length in `STATUS=`: it cannot add an assignment (`READY=1`).
    @Test func whatAWorkerSaidCannotAddAnAssignment() {
        let said = SystemdState.extendTimeout(microseconds: 1, .workerWaiting(.broker, said: "waiting\nREADY=1\r\nWATCHDOG=1")).notification
        #expect(said.split(separator: "\n") == ["EXTEND_TIMEOUT_USEC=1", "STATUS=starting: broker: waiting READY=1 WATCHDOG=1"])
        let long = NodeStatus.refused(.broker, note: String(repeating: "é", count: 5000)).description
        #expect(long.utf8.count <= NodeStatus.maximumSaidBytes + 64 && long.hasSuffix("…"))
    }
}
