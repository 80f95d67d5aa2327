import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A swift-log backend that writes one line per message to standard error: human-readable (`console`) or
/// one JSON object per line (`json`, HarmonyLite's `logging.format`). Every line carries the node id and the
/// process and its pid, since a node's five processes share one journal. Metadata are fields: `key=value`
/// after the console message, JSON keys of their own in `json` lines.
///
/// Under systemd, when standard error is the journal (`JOURNAL_STREAM` names it), every line starts with
/// its syslog priority (`<3>` for errors, `<4>` warnings, `<6>` info, `<7>` debug), which journald takes
/// as the entry's priority and strips (`SyslogLevelPrefix=`, on by default): `journalctl -p err` works.
public struct LineLogHandler: LogHandler {
    public enum Format: Sendable { case console, json }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let format: Format
    private let nodeID: UInt64
    private let pid = getpid()
    private let priorityPrefix = Self.stderrIsJournal()

    public init(label: String, format: Format, nodeID: UInt64, level: Logger.Level) {
        self.label = label
        self.format = format
        self.nodeID = nodeID
        logLevel = level
    }

    /// Installs the handler for the whole process. `format` is HarmonyLite's `logging.format`.
    public static func bootstrap(process: String, format: String, verbose: Bool, nodeID: UInt64) {
        let chosen: Format = format == "json" ? .json : .console
        LoggingSystem.bootstrap { _ in
            LineLogHandler(label: process, format: chosen, nodeID: nodeID, level: verbose ? .debug : .info)
        }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        emit(level: event.level, message: "\(event.message)", metadata: merged, pid: pid, time: nil)
    }

    /// Emits a line nats-server wrote, in this handler's format, as process `label` with the server's pid
    /// and its own time stamp (converted to UTC), at its level mapped to ours (`FTL` is critical).
    public func relay(_ line: NATSServerLogLine, pid: Int32) {
        guard line.level >= logLevel else { return }
        var time: String?
        if let local = line.time { time = Self.timestamp(local) }
        emit(level: line.level, message: line.text, metadata: metadata, pid: line.pid ?? pid, time: time)
    }

    /// Emits a line a worker wrote past its logger (a crash report) in this handler's format, as process
    /// `label` with the worker's pid.
    public func relay(foreign text: String, level: Logger.Level, pid: Int32) {
        guard level >= logLevel else { return }
        emit(level: level, message: text, metadata: metadata, pid: pid, time: nil)
    }

    /// Writes a worker's own log line (already in this node's format) unchanged, with its newline.
    public func passThrough(_ line: [UInt8]) {
        Self.write(line + [UInt8(ascii: "\n")])
    }

    /// Set by the supervisor for its workers when its standard error is the journal: their standard error is
    /// a pipe to it, but their lines end up in the journal and need their priority prefix.
    public static let journalPrioritiesVariable = "HARMONYLITE_LOG_PRIORITIES"

    /// Whether this process's lines start with a journald priority.
    public var writesPriorities: Bool { priorityPrefix }

    private func emit(level: Logger.Level, message rawMessage: String, metadata merged: Logger.Metadata, pid: Int32, time: String?) {
        let message = Self.clean(rawMessage)
        let values = merged.mapValues { Self.clean("\($0)") }
        var line = priorityPrefix ? "<\(Self.syslogPriority(level))>" : ""
        switch format {
        case .console:
            // journald stamps every entry itself: a second time stamp would only repeat it.
            var text = priorityPrefix ? "" : "\(time ?? Self.timestamp()) "
            text += "\(Self.tag(level)) [\(label)] \(Self.oneLine(message))" + Self.logfmtFields(values)
            line += text + "\n"
        case .json:
            var text =
                "{\"time\":\"\(time ?? Self.timestamp())\",\"level\":\"\(level)\",\"node_id\":\(nodeID),"
                + "\"process\":\(Self.quote(label)),\"pid\":\(pid),\"message\":\(Self.quote(message))"
            for key in values.keys.sorted() where !Self.reservedKeys.contains(key) { text += ",\(Self.quote(key)):\(Self.quote(values[key]!))" }
            line += text + "}\n"
        }
        Self.write(Array(line.utf8))
    }

    private static func write(_ line: [UInt8]) {
        var bytes = line
        bytes.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(2, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { if errno == EINTR { continue } else { return } }
                offset += n
            }
        }
    }

    /// The most bytes of one message or metadata value: text can quote outside bytes (a 700 KB table name).
    public static let maximumFieldBytes = 8192

    /// Secrets masked, then cut on a character boundary to `maximumFieldBytes`, saying how much was cut.
    /// The text is cut roughly first, so masking never scans megabytes (a 700 KB table name took seconds
    /// in a debug build: the applier missed its heartbeats). What that cut leaves of a registered secret
    /// is dropped before masking, since masking cannot recognise it: a mask shorter than the secrets
    /// before it would otherwise pull it within the second cut.
    static func clean(_ text: String) -> String {
        let total = text.utf8.count
        guard total > maximumFieldBytes + 1024 else {
            let redacted = SecretRedaction.redact(text)
            guard redacted.utf8.count > maximumFieldBytes else { return redacted }
            let kept = cut(redacted, to: maximumFieldBytes - 64)
            return kept + "… (\(redacted.utf8.count - kept.utf8.count) more bytes cut)"
        }
        let rough = SecretRedaction.droppingPartialSecret(Array(cut(text, to: maximumFieldBytes + 1024).utf8))
        let kept = cut(SecretRedaction.redact(String(decoding: rough, as: UTF8.self)), to: maximumFieldBytes - 64)
        return kept + "… (\(total - kept.utf8.count) more bytes cut)"
    }

    /// A console line is one line: a newline, carriage return or other control character in a message or
    /// a value (a table name is the application's, a worker's status its own) is written escaped (`\n`,
    /// `\u{1B}`), so no text can start a line of its own that reads as another process's.
    static func oneLine(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return text }
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: escaped += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// The metadata of a console line, ` key=value` each in key order, as logfmt writes them: a value that is
    /// one plain token stays bare, any other (empty, or holding a space, `"`, `=`, `\` or a control character)
    /// is double-quoted with `"` and `\` escaped and control characters written `\n`, `\r`, `\t`, `\u00XX`.
    /// So a value can neither end its field early nor read as another field, and logfmt parsers read it back.
    static func logfmtFields(_ values: [String: String]) -> String {
        var text = ""
        for key in values.keys.sorted() { text += " \(key)=\(logfmtValue(values[key]!))" }
        return text
    }

    static func logfmtValue(_ value: String) -> String {
        let bare = !value.isEmpty && value.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value != 0x7F && $0 != "\"" && $0 != "=" && $0 != "\\" }
        return bare ? value : quote(value)
    }

    /// The longest prefix of at most `bytes` bytes that ends on a character boundary.
    static func cut(_ text: String, to bytes: Int) -> String {
        let utf8 = text.utf8
        guard utf8.count > bytes else { return text }
        var end = utf8.index(utf8.startIndex, offsetBy: bytes)
        while end > utf8.startIndex, UTF8.isContinuation(utf8[end]) { end = utf8.index(before: end) }
        return String(decoding: utf8[..<end], as: UTF8.self)
    }

    /// Keys every JSON line has already: metadata of the same name would make a duplicate key.
    static let reservedKeys: Set<String> = ["time", "level", "node_id", "process", "pid", "message"]

    static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// Whether standard error is connected to the journal: `JOURNAL_STREAM` is `<device>:<inode>` of the
    /// stream systemd connected, and stays in the environment of children whose stderr is elsewhere.
    static func stderrIsJournal() -> Bool {
        if let set = getenv(journalPrioritiesVariable).flatMap({ String(validatingCString: $0) }), set == "1" { return true }
        guard let value = getenv("JOURNAL_STREAM").flatMap({ String(validatingCString: $0) }) else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var status = stat()
        guard fstat(2, &status) == 0 else { return false }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }

    static func tag(_ level: Logger.Level) -> String {
        switch level {
        case .trace: return "TRC"
        case .debug: return "DBG"
        case .info, .notice: return "INF"
        case .warning: return "WRN"
        case .error: return "ERR"
        case .critical: return "CRT"
        }
    }

    /// UTC, millisecond precision, RFC 3339.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return rfc3339(seconds: Int(now.tv_sec), milliseconds: Int(now.tv_nsec / 1_000_000))
    }

    /// A local time nats-server wrote (it uses the time zone this process has too), as UTC RFC 3339.
    static func timestamp(_ local: NATSServerLogLine.LocalTime) -> String {
        var parts = tm()
        parts.tm_year = Int32(local.year - 1900)
        parts.tm_mon = Int32(local.month - 1)
        parts.tm_mday = Int32(local.day)
        parts.tm_hour = Int32(local.hour)
        parts.tm_min = Int32(local.minute)
        parts.tm_sec = Int32(local.second)
        parts.tm_isdst = -1
        let seconds = mktime(&parts)
        guard seconds != -1 else { return timestamp() }
        return rfc3339(seconds: seconds, milliseconds: local.microsecond / 1000)
    }

    /// `seconds` since the epoch as UTC RFC 3339 with milliseconds: `2026-12-07T12:51:17.739Z`.
    public static func rfc3339(seconds: Int, milliseconds: Int) -> String {
        var seconds = seconds
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(milliseconds), 3))Z"
    }

    /// Milliseconds since the epoch as UTC RFC 3339 (`taken at 2026-12-07T12:51:17.739Z`, not a count of ms).
    public static func rfc3339(unixMilliseconds ms: Int64) -> String {
        let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        return rfc3339(seconds: Int(seconds), milliseconds: Int(ms - seconds * 1000))
    }

    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += "\\u00" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
