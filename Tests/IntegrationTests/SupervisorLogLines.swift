/// The supervisor's report lines in a console log: `[supervisor] <message> key=value …`, the message constant
/// and the values in fields (`Supervision/SupervisorReport+Rendering.swift`). `fields` match as prefixes of
/// their values (`note` holds a worker's whole last words).
func supervisorLines(_ log: String, _ message: String, _ fields: KeyValuePairs<String, String> = [:]) -> [Substring] {
    log.split(separator: "\n").filter { line in
        line.contains("[supervisor] \(message)") && fields.allSatisfy { line.contains(" \($0.key)=\($0.value)") }
    }
}

/// Messages of the supervisor's reports the process tests look for.
enum SupervisorMessage {
    static let ready = "child ready"
    static let stopped = "child stopped"
    /// Every line about a child that ended without being asked (restarted, or the node stops).
    static let ended = "child ended"
    static let restarting = "child ended: restarting it after its backoff"
    static let gaveUp = "child ended more often than restart_intensity allows within restart_period_seconds: stopping the node"
    static let noHeartbeat = "child sent no heartbeat within its heartbeat_timeout: killing it"
    static let stoppedForReload = "child stopped for the reload: starting it again"
}
