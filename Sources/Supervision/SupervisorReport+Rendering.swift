import HarmonyConfig
import IPC
import Logging

/// The one place the supervisor's reports become words: each report's level, constant message and metadata
/// (console: `key=value` after the message; JSON: keys of their own), and systemd's notify text. Values from
/// outside (what a worker said) go only into metadata and `STATUS=`, never into a message.
extension SupervisorReport {
    public var level: Logger.Level {
        switch self {
        case .started: .debug
        case .ready, .allReady, .stopRequested, .stopped, .allStopped, .reloadStarted, .stoppedForReload, .reloadComplete, .reloadDeferred,
            .stoppedForRestore, .restoreComplete, .deferredReloadStarting:
            .info
        case .endedWhileStopping, .stopTimedOut, .watchdogWithheld, .reloadIgnored, .endedWhileRestoreStops: .warning
        case .restarting, .gaveUp, .refused, .misconfigured, .unresponsive, .restoreStarted, .restoreImpossible, .restoresExhausted: .error
        }
    }

    /// A constant per case (and per `LifeSigns` or stop kind): what changes goes into `metadata`.
    public var message: Logger.Message {
        switch self {
        case .started: "child started"
        case .ready: "child ready"
        case .allReady: "all processes ready"
        case .stopRequested(_, false): "stopping the node"
        case .stopRequested(_, true): "asked to stop while already stopping"
        case .stopped: "child stopped"
        case .endedWhileStopping: "child ended while the node stops"
        case .stopTimedOut: "child did not stop within its stop_timeout: killing it"
        case .allStopped: "all processes stopped"
        case .restarting: "child ended: restarting it after its backoff"
        case .gaveUp: "child ended more often than restart_intensity allows within restart_period_seconds: stopping the node"
        case .refused: "child refused the start: stopping the node with a status systemd does not restart on"
        case .misconfigured: "child cannot start with this configuration: stopping the node with a status systemd does not restart on"
        case .unresponsive(_, _, _, .heartbeats): "child sent no heartbeat within its heartbeat_timeout: killing it"
        case .unresponsive(_, _, _, .probeAnswers): "child did not answer its liveness probe within its heartbeat_timeout: killing it"
        case .watchdogWithheld: "withholding the systemd watchdog: a worker is late with its heartbeat"
        case .reloadStarted: "reload: restarting the workers one at a time"
        case .stoppedForReload: "child stopped for the reload: starting it again"
        case .reloadComplete: "reload complete"
        case .reloadDeferred: "reload asked for during a snapshot restore: deferred until the restore is over"
        case .reloadIgnored: "reload asked for while the node cannot reload: ignored"
        case .restoreStarted: "changes are missing from the streams: restoring a snapshot in place, the node keeps running"
        case .restoreImpossible: "changes are missing from the streams and no child restores snapshots here: stopping the node"
        case .restoresExhausted: "changes are still missing from the streams after restart_intensity restores: stopping the node"
        case .stoppedForRestore: "child stopped for the snapshot restore"
        case .endedWhileRestoreStops: "child ended while the snapshot restore stops it"
        case .restoreComplete: "snapshot restore in place complete: all processes ready"
        case .deferredReloadStarting: "carrying out the reload deferred during the restore"
        }
    }

    public var metadata: Logger.Metadata {
        switch self {
        case .started(let role, let pid):
            return ["child": "\(role)", "child_pid": "\(pid)"]
        case .ready(let role, let pid, let detail):
            var fields: Logger.Metadata = ["child": "\(role)", "child_pid": "\(pid)"]
            if !detail.isEmpty { fields["detail"] = "\(detail)" }
            return fields
        case .allReady, .allStopped, .reloadComplete, .reloadDeferred, .restoreComplete, .deferredReloadStarting:
            return [:]
        case .stopRequested(let reason, _):
            return ["reason": "\(reason)"]
        case .stopped(let role, let pid, let status), .stoppedForRestore(let role, let pid, let status):
            return ["child": "\(role)", "child_pid": "\(pid)", "status": "\(status)"]
        case .endedWhileStopping(let role, let end), .endedWhileRestoreStops(let role, let end):
            return end.metadata(role).merging(["child": "\(role)"]) { $1 }
        case .stopTimedOut(let role, let pid, let timeout):
            return ["child": "\(role)", "child_pid": "\(pid)", "stop_timeout_s": "\(Self.seconds(timeout))", "config": "[workers.\(role)] stop_timeout"]
        case .restarting(let role, let end, let delay, let attempt, let limit):
            return end.metadata(role).merging(limit.metadata(role)) { $1 }.merging([
                "child": "\(role)", "restart_in_s": "\(Self.seconds(delay))", "restart": "\(attempt)",
            ]) { $1 }
        case .gaveUp(let role, let end, let limit):
            return end.metadata(role).merging(limit.metadata(role)) { $1 }.merging(["child": "\(role)"]) { $1 }
        case .refused(let role, let note):
            var fields: Logger.Metadata = ["child": "\(role)", "exit_status": "\(SupervisorExitCode.refused)"]
            if !note.isEmpty { fields["note"] = "\(note)" }
            return fields
        case .misconfigured(let role, let problem, let end):
            return end.metadata(role).merging(["child": "\(role)", "problem": "\(problem)", "exit_status": "\(SupervisorExitCode.configuration)"]) { $1 }
        case .unresponsive(let role, let pid, let silence, _):
            return ["child": "\(role)", "child_pid": "\(pid)", "silent_s": "\(Self.seconds(silence))", "config": "[workers.\(role)] heartbeat_timeout"]
        case .watchdogWithheld(let late):
            return ["child": "\(late)"]
        case .reloadStarted(let workers):
            return ["workers": "\(Self.list(workers))"]
        case .stoppedForReload(let role):
            return ["child": "\(role)"]
        case .reloadIgnored(let phase):
            return ["phase": "\(phase.rawValue)"]
        case .restoreStarted(let role, let note, let stopping):
            var fields: Logger.Metadata = ["child": "\(role)", "restarting": "\(Self.list(stopping))"]
            if !note.isEmpty { fields["note"] = "\(note)" }
            return fields
        case .restoreImpossible(let role, let note):
            var fields: Logger.Metadata = ["child": "\(role)"]
            if !note.isEmpty { fields["note"] = "\(note)" }
            return fields
        case .restoresExhausted(let role, let note, let limit):
            var fields = limit.metadata(role).merging(["child": "\(role)"]) { $1 }
            if !note.isEmpty { fields["note"] = "\(note)" }
            return fields
        }
    }

    /// Seconds with one decimal: `0.3`, `20.0`.
    static func seconds(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// Why the snapshotter is asked to restore (`RestoreRequest`, passed in its environment; it logs it).
    public static func restoreReason(askedBy role: WorkerRole) -> String { "\(role) found changes missing from the streams" }

    static func list(_ roles: [WorkerRole]) -> String { roles.map(\.rawValue).joined(separator: ", ") }
}

extension ChildEnd {
    /// How it ended, in words: `exited with status 1`, `was killed by signal 9 (SIGKILL)`.
    public var statusText: String {
        switch cause {
        case .exited(let status): "\(status)"
        case .couldNotStart(let reason): "could not be started: \(reason)"
        case .killedUnresponsive: "was killed after missing its life signs"
        }
    }

    /// The memory hint, when the way it ended is how an allocation failure under `memory_limit` ends a process.
    func memoryLimitText(_ role: WorkerRole) -> String? {
        memoryLimit.map {
            "\($0 >> 20) MiB (RLIMIT_AS): an allocation failure under it ends a process this way; raise [workers.\(role)] memory_limit if this repeats"
        }
    }

    func metadata(_ role: WorkerRole) -> Logger.Metadata {
        var fields: Logger.Metadata = ["status": "\(statusText)"]
        if let pid { fields["child_pid"] = "\(pid)" }
        if !note.isEmpty { fields["note"] = "\(note)" }
        if let memory = memoryLimitText(role) { fields["memory_limit"] = "\(memory)" }
        return fields
    }

    /// One line for `STATUS=`: the status and the note.
    var summary: String { note.isEmpty ? statusText : "\(statusText); \(note)" }
}

extension RestartLimit {
    func metadata(_ role: WorkerRole) -> Logger.Metadata {
        ["restart_intensity": "\(intensity)", "restart_period_s": "\(period)", "config": "[workers.\(role)] restart_intensity, restart_period_seconds"]
    }
}

extension SystemdState {
    /// The datagram's text, assignments one a line.
    public var notification: String {
        switch self {
        case .ready(let status): "READY=1\nSTATUS=\(status)"
        case .reloading(let status): "RELOADING=1\nSTATUS=\(status)"
        case .stopping(let reason): "STOPPING=1\nSTATUS=\(NodeStatus.stopping)\(StopReason.suffix(reason))"
        case .status(let status): "STATUS=\(status)"
        case .watchdog: "WATCHDOG=1"
        case .extendTimeout(let microseconds, let status): "EXTEND_TIMEOUT_USEC=\(microseconds)\nSTATUS=\(status)"
        }
    }
}

extension NodeStatus: CustomStringConvertible {
    /// The most bytes of what a worker said that a status line carries.
    public static let maximumSaidBytes = 1024

    /// The `STATUS=` text: one line (what a worker said cannot add an assignment), bounded.
    public var description: String {
        switch self {
        case .starting(let role): "starting \(role)"
        case .startWaiting(let roles, let seconds): "starting: still waiting for \(Self.waitingFor(roles)) to be ready (\(seconds) s)"
        case .workerWaiting(let role, let said): "starting: \(role): \(Self.oneLine(said))"
        case .ready(let roles): "ready: \(SupervisorReport.list(roles)) running"
        case .degraded(let role, let delay, let end):
            "degraded: \(role) restarting in \(SupervisorReport.seconds(delay)) s (\(Self.oneLine(end.summary)))"
        case .degradedRestarting(let restarting, let running):
            "degraded: \(SupervisorReport.list(restarting)) restarting; \(running.isEmpty ? "nothing" : SupervisorReport.list(running)) running"
        case .refused(let role, let note): note.isEmpty ? "refused: \(role)" : "refused: \(role); \(Self.oneLine(note))"
        case .misconfigured(let role, let problem): "misconfigured: \(role); \(Self.oneLine(problem))"
        case .reloading: "reloading: restarting workers one at a time"
        case .reloadingWorker(let role): "reloading: restarting \(role)"
        case .reloadWaiting(let roles, let seconds): "reloading: still waiting for \(Self.waitingFor(roles)) to be ready (\(seconds) s)"
        case .restoring(let role): "restoring: \(SupervisorReport.restoreReason(askedBy: role))"
        case .restoreStopping(let role): "restoring: stopping \(role)"
        case .restorerRestoring(let role): "restoring: \(role) restores a snapshot"
        case .restoreStarting(let role): "restoring: starting \(role)"
        case .stopping: "stopping"
        case .stoppingChild(let role, let reason): "stopping \(role)\(StopReason.suffix(reason))"
        }
    }

    static func waitingFor(_ roles: [WorkerRole]) -> String { roles.isEmpty ? "the workers" : SupervisorReport.list(roles) }

    /// Line breaks become spaces and the text is cut to `maximumSaidBytes` on a character boundary.
    static func oneLine(_ text: String) -> String {
        var result = ""
        var bytes = 0
        for character in text {
            let piece = character.isNewline ? " " : String(character)
            bytes += piece.utf8.count
            guard bytes <= maximumSaidBytes else { return result + "…" }
            result += piece
        }
        return result
    }
}

extension StopReason {
    /// `: broker refused the start`, for the stop's `STATUS=` lines; "" for a stop that was asked for.
    static func suffix(_ reason: StopReason?) -> String {
        switch reason {
        case nil: ""
        case .refused(let role): ": \(role) refused the start"
        case .gaveUp(let role, let end): ": \(role) ended more often than its restart budget allows (\(NodeStatus.oneLine(end.statusText)))"
        case .restoreFailed(let role): ": \(role) found changes missing that no snapshot restore could bring"
        case .misconfigured(let role): ": \(role) cannot start with this configuration"
        }
    }
}
