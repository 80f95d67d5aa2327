/// Says how a node catching up with a shard stream gets on: a line when it falls `threshold` messages or
/// more behind, one every `interval` seconds while it stays behind (percent of the way, rate, time left),
/// and one once it has caught up. Pure: readings and `now` in, lines out (the supervisor logs them; it
/// knows each stream's head from the broker and the cursor from the applier).
public struct CatchUpProgress: Sendable {
    public static let threshold: UInt64 = 1000
    public static let interval = 10.0

    struct Run: Sendable {
        var startedAt: Double
        var startCursor: UInt64
        var startHead: UInt64
        var lastLine: Double
    }

    private var runs: [String: Run] = [:]

    public init() {}

    /// The line to log for `stream` now, if any.
    public mutating func observe(stream: String, head: UInt64?, cursor: UInt64?, now: Double) -> String? {
        guard let head, let cursor else { return nil }
        let behind = head > cursor ? head - cursor : 0
        guard var run = runs[stream] else {
            guard behind >= Self.threshold else { return nil }
            runs[stream] = Run(startedAt: now, startCursor: cursor, startHead: head, lastLine: now)
            return "catching up with \(stream): \(behind) messages behind (cursor \(cursor), stream at \(head))"
        }
        let applied = cursor > run.startCursor ? cursor - run.startCursor : 0
        let seconds = max(now - run.startedAt, 0.001)
        if behind == 0 {
            runs[stream] = nil
            return "caught up with \(stream): \(applied) messages in \(Self.duration(seconds))"
        }
        guard now - run.lastLine >= Self.interval else { return nil }
        run.lastLine = now
        runs[stream] = run
        let rate = Double(applied) / seconds
        let total = applied + behind
        let percent = total > 0 ? Int(Double(applied) * 100 / Double(total)) : 0
        let left = rate > 0 ? "about \(Self.duration(Double(behind) / rate)) left" : "no progress yet"
        return "catching up with \(stream): \(percent)% (cursor \(cursor), stream at \(head), \(behind) behind), \(Int(rate.rounded())) messages/s, \(left)"
    }

    static func duration(_ seconds: Double) -> String {
        if seconds < 10 { return String(format: "%.1f s", seconds) }
        if seconds < 120 { return "\(Int(seconds.rounded())) s" }
        if seconds < 7200 { return "\(Int((seconds / 60).rounded())) min" }
        return String(format: "%.1f h", seconds / 3600)
    }
}
