/// The supervisor's report lines in a console log: `[supervisor] <message> key=value …`, the message constant
/// and the values in fields (`Supervision/SupervisorReport+Rendering.swift`), logfmt-quoted when not one
/// plain token. `fields` match as prefixes of their values (`note` holds a worker's whole last words).
func supervisorLines(_ log: String, _ message: String, _ fields: KeyValuePairs<String, String> = [:]) -> [Substring] {
    log.split(separator: "\n").filter { line in
        line.contains("[supervisor] \(message)") && fields.allSatisfy { hasField(line, $0.key, startingWith: $0.value) }
    }
}

/// Whether a console line has the field `key` with a value starting with `prefix`, bare or logfmt-quoted (a
/// trailing space asks for the whole bare value: `"4711 "`).
func hasField(_ line: Substring, _ key: String, startingWith prefix: String) -> Bool {
    let escaped = prefix.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    let token = prefix.hasSuffix(" ") ? prefix.dropLast() : Substring(prefix)
    return line.contains(" \(key)=\"\(escaped)") || (!token.contains(" ") && line.contains(" \(key)=\(prefix)"))
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
