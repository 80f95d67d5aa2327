import Foundation

/// A line about a snapshot job in progress: a constant message (what is being done), the values in fields
/// (swift-log metadata: bytes, seconds, rates, sequences), so log queries match the message and read the
/// numbers.
public struct JobNote: Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public var fields: [String: String]

    public init(_ message: String, _ fields: [String: String] = [:]) {
        self.message = message
        self.fields = fields
    }

    /// For the worker's status line and `-save-snapshot`'s output: the message, then `key=value` in key order
    /// (a value with a space in double quotes).
    public var description: String {
        ([message] + fields.keys.sorted().map { key in fields[key]!.contains(" ") ? "\(key)=\"\(fields[key]!)\"" : "\(key)=\(fields[key]!)" })
            .joined(separator: " ")
    }

    /// Seconds with two decimals, as every job note writes them.
    public static func seconds(_ value: Double) -> String { String(format: "%.2f", value) }
}

/// Progress notes for long transfers: percent, size and rate (binary units, and the exact bytes), at most
/// every `interval` seconds and at the end.
public struct TransferProgress {
    let what: String
    let started: Double
    let interval: Double
    var lastReport: Double
    let clock: () -> Double

    public init(_ what: String, interval: Double = 2, clock: @escaping () -> Double) {
        self.what = what
        self.interval = interval
        self.clock = clock
        started = clock()
        lastReport = started
    }

    /// A note to log now, if it is time for one: `uploading the snapshot` with `percent=42 total=1.25 GiB
    /// rate=55.3 MiB/s done_bytes=… total_bytes=… seconds=…`.
    public mutating func line(done: Int64, total: Int64) -> JobNote? {
        let now = clock()
        guard now - lastReport >= interval || (done == total && total > 0) else { return nil }
        lastReport = now
        let percent = total > 0 ? Int(Double(done) * 100 / Double(total)) : 100
        return JobNote(
            what,
            [
                "percent": "\(percent)", "total": ByteSize.text(total), "rate": ByteSize.rate(done, seconds: now - started), "done_bytes": "\(done)",
                "total_bytes": "\(total)", "seconds": JobNote.seconds(now - started),
            ])
    }

    /// Whether a line is due (cheap: no file is looked at).
    public var isDue: Bool { clock() - lastReport >= interval }

    /// While a copy of a known source grows (`VACUUM INTO`: the copy is at most the source's size, usually
    /// less): `copying the database` with `written=120 MiB at_most=400 MiB percent=30 seconds=12.00 …`.
    public mutating func copyLine(written: Int64, sourceSize: Int64) -> JobNote? {
        let now = clock()
        guard now - lastReport >= interval else { return nil }
        lastReport = now
        let percent = sourceSize > 0 ? min(100, Int(Double(written) * 100 / Double(sourceSize))) : 100
        return JobNote(
            what,
            [
                "written": ByteSize.text(written), "at_most": ByteSize.text(sourceSize), "percent": "\(percent)", "written_bytes": "\(written)",
                "at_most_bytes": "\(sourceSize)", "seconds": JobNote.seconds(now - started),
            ])
    }
}

/// Byte counts as people read them, in binary units with the precision that says something: `512 B`,
/// `12.5 KiB`, `3.25 MiB`, `48.1 MiB`, `730 MiB`, `1.25 GiB`; never `0.0 MB`.
public enum ByteSize {
    public static func text(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(max(0, bytes))
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(Int(value)) B" }
        return number(value) + " " + units[unit]
    }

    /// `done` bytes in `seconds`, per second.
    public static func rate(_ done: Int64, seconds: Double) -> String {
        text(Int64(Double(max(0, done)) / max(seconds, 0.001))) + "/s"
    }

    /// Three significant digits at most: 3.25, 48.1, 730.
    static func number(_ value: Double) -> String {
        if value < 10 { return trimmed(String(format: "%.2f", value)) }
        if value < 100 { return trimmed(String(format: "%.1f", value)) }
        return String(format: "%.0f", value)
    }

    private static func trimmed(_ text: String) -> String {
        guard text.contains(".") else { return text }
        var text = Substring(text)
        while text.last == "0" { text.removeLast() }
        if text.last == "." { text.removeLast() }
        return String(text)
    }
}
