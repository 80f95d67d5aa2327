import Logging

/// One line a worker process wrote to its standard output or error, which the supervisor reads from a pipe.
/// A worker's own log lines (this node's format: JSON objects under `format = "json"`, else console lines,
/// either with a journald `<N>` prefix) pass through unchanged; anything else (the Swift runtime's crash
/// report and backtrace, a C library's message) is `foreign`: the supervisor emits it again in the node's
/// format as that worker's line, at level `.error`, so a node's stream stays one format even when a worker
/// faults. Pure: bytes in, a value out.
public enum WorkerOutputLine: Equatable, Sendable {
    /// A line of ours, without its newline: written again as it is.
    case ours([UInt8])
    /// A line of someone else's, as text (not UTF-8 bytes replaced, cut to `maximumForeignBytes`).
    case foreign(String)

    /// The most bytes read of one line: a worker's own line can be longer than one field (message and
    /// metadata each up to `LineLogHandler.maximumFieldBytes`); a line cut at this length is foreign.
    public static let maximumBytes = 65536
    /// The most bytes of a foreign line kept.
    public static let maximumForeignBytes = 8192

    /// The level a foreign line is emitted at: nothing but a fault writes past a worker's logger.
    public static let foreignLevel = Logger.Level.error

    /// `json`: the node's `logging.format` is `json`. `cut`: the splitter cut the line at its limit.
    public init(_ bytes: [UInt8], json: Bool, cut: Bool = false) {
        var line = bytes
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        if !cut, Self.isOurs(line, json: json) {
            self = .ours(line)
        } else {
            self = .foreign(String(decoding: line.prefix(Self.maximumForeignBytes), as: UTF8.self))
        }
    }

    static func isOurs(_ line: [UInt8], json: Bool) -> Bool {
        var body = line[...]
        var prefixed = false
        if body.count >= 3, body[body.startIndex] == UInt8(ascii: "<"), (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(body[body.startIndex + 1]),
            body[body.startIndex + 2] == UInt8(ascii: ">")
        {
            body = body.dropFirst(3)
            prefixed = true
        }
        if json {
            return body.starts(with: Array("{\"time\":\"".utf8)) && body.last == UInt8(ascii: "}")
        }
        // Console: `2026-12-07T12:51:17.739Z INF [capturer] …`, without the time when prefixed for journald.
        if !prefixed {
            let stamp = Array(body.prefix(25))
            guard stamp.count == 25, stamp[4] == UInt8(ascii: "-"), stamp[10] == UInt8(ascii: "T"), stamp[19] == UInt8(ascii: "."),
                stamp[23] == UInt8(ascii: "Z"), stamp[24] == UInt8(ascii: " ")
            else { return false }
            body = body.dropFirst(25)
        }
        let tag = String(decoding: body.prefix(5), as: UTF8.self)
        return ["TRC", "DBG", "INF", "WRN", "ERR", "CRT"].contains { tag == $0 + " [" }
    }

    /// Whether a foreign line says why a worker died: the Swift runtime's `Fatal error: …` or its crash
    /// report's `*** Program crashed: …`; kept as the worker's last words over earlier foreign lines.
    public static func saysWhy(_ text: String) -> Bool {
        text.contains("Fatal error") || text.hasPrefix("*** Program crashed")
    }
}
