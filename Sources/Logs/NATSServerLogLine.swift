import Logging

/// One line nats-server wrote to its standard output or error, parsed so the supervisor can emit it in the
/// node's own format (JSON, journald priorities) instead of passing it through raw.
///
/// nats-server 2.9 writes `[<pid>] <yyyy/mm/dd hh:mm:ss.micro> [<TAG>] <text>` (local time), tags `INF`,
/// `WRN`, `ERR`, `FTL`, `DBG`, `TRC`. Anything else (a line written before its logger exists, such as
/// `nats-server: open /x: no such file or directory`) is kept whole with level `.error` when it exits the
/// server, else `.info`: `unparsed` says which. Pure: bytes in, a value out.
public struct NATSServerLogLine: Equatable, Sendable {
    public enum Tag: String, Sendable, CaseIterable { case INF, WRN, ERR, FTL, DBG, TRC }

    public var tag: Tag?
    public var pid: Int32?
    /// The server's own time stamp as written (local time), when it had one.
    public var time: LocalTime?
    public var text: String

    public struct LocalTime: Equatable, Sendable {
        public var year, month, day, hour, minute, second, microsecond: Int
    }

    /// The swift-log level the node's handler emits the line at (`FTL` is `.critical`: journald priority 2).
    public var level: Logger.Level {
        switch tag {
        case .INF: .info
        case .WRN: .warning
        case .ERR: .error
        case .FTL: .critical
        case .DBG: .debug
        case .TRC: .trace
        case nil: text.hasPrefix("nats-server: ") ? .error : .info
        }
    }

    /// Whether the line says why the server stops or failed: kept as the server's last words.
    public var isFailure: Bool { level >= .error }

    /// The most bytes of one line kept: a longer line is cut (nats-server traces can quote whole messages).
    public static let maximumBytes = 8192

    public init(tag: Tag?, pid: Int32?, time: LocalTime?, text: String) {
        self.tag = tag
        self.pid = pid
        self.time = time
        self.text = text
    }

    /// Parses one line without its newline. Bytes that are not UTF-8 are replaced; the text is bounded.
    public init(_ bytes: some Collection<UInt8>) {
        var line = Array(bytes.prefix(Self.maximumBytes))
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        self = Self.parse(line) ?? NATSServerLogLine(tag: nil, pid: nil, time: nil, text: String(decoding: line, as: UTF8.self))
    }

    private static func parse(_ line: [UInt8]) -> NATSServerLogLine? {
        var index = 0
        func take(_ byte: Character) -> Bool {
            guard index < line.count, line[index] == UInt8(ascii: byte.unicodeScalars.first!) else { return false }
            index += 1
            return true
        }
        func number(digits: Int? = nil, max: Int = 10) -> Int? {
            var value = 0, count = 0
            while index < line.count, count < max, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(line[index]) {
                value = value * 10 + Int(line[index] - UInt8(ascii: "0"))
                index += 1
                count += 1
            }
            guard count > 0, digits == nil || count == digits else { return nil }
            return value
        }
        guard take("["), let pid = number(max: 9), take("]"), take(" ") else { return nil }
        var time: LocalTime?
        if index < line.count, line[index] != UInt8(ascii: "[") {
            guard let year = number(digits: 4), take("/"), let month = number(digits: 2), take("/"), let day = number(digits: 2), take(" "),
                let hour = number(digits: 2), take(":"), let minute = number(digits: 2), take(":"), let second = number(digits: 2),
                take("."), let micro = number(digits: 6), take(" "),
                (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
            else { return nil }
            time = LocalTime(year: year, month: month, day: day, hour: hour, minute: minute, second: second, microsecond: micro)
        }
        guard take("["), index + 4 <= line.count, line[index + 3] == UInt8(ascii: "]"),
            let tag = Tag(rawValue: String(decoding: line[index..<index + 3], as: UTF8.self))
        else { return nil }
        index += 4
        _ = take(" ")
        return NATSServerLogLine(tag: tag, pid: Int32(pid), time: time, text: String(decoding: line[index...], as: UTF8.self))
    }
}

/// Splits a byte stream (a pipe read in pieces) into lines, bounded: a line longer than
/// `NATSServerLogLine.maximumBytes` is cut there and its rest dropped up to the next newline.
public struct LineSplitter: Sendable {
    private var pending: [UInt8] = []
    private var discarding = false
    public let limit: Int

    public init(limit: Int = NATSServerLogLine.maximumBytes) { self.limit = limit }

    /// The complete lines in `bytes` (after what came before), without their newlines.
    public mutating func feed(_ bytes: some Collection<UInt8>) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if !discarding { lines.append(pending) }
                pending.removeAll(keepingCapacity: true)
                discarding = false
            } else if !discarding {
                pending.append(byte)
                if pending.count >= limit {
                    lines.append(pending)
                    pending.removeAll(keepingCapacity: true)
                    discarding = true
                }
            }
        }
        return lines
    }

    /// What is left when the stream ends (a last line without a newline), once.
    public mutating func finish() -> [UInt8]? {
        defer { pending = []; discarding = false }
        return pending.isEmpty || discarding ? nil : pending
    }
}
