/// Says how a node catching up with a shard stream gets on: a line when it falls `threshold` messages or
/// more behind, one every `interval` seconds while it stays behind (percent of the way, rate, time left),
/// and one once it has caught up. Pure: readings and `now` in, typed reports out (the supervisor logs them; it
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

    /// What a node catching up with a stream reports: typed values; `message` and `metadata` render them.
    public enum Report: Equatable, Sendable {
        /// It fell `threshold` messages or more behind.
        case behind(stream: String, behind: UInt64, cursor: UInt64, head: UInt64)
        /// Still behind, every `interval` s: how far along, how fast, how long left (nil: no progress yet).
        case progress(stream: String, percent: Int, cursor: UInt64, head: UInt64, behind: UInt64, messagesPerSecond: Int, secondsLeft: Double?)
        /// Caught up: `applied` messages in `seconds`.
        case caughtUp(stream: String, applied: UInt64, seconds: Double)

        /// The log line's message: constant per case.
        public var message: String {
            switch self {
            case .behind: "catching up with a shard stream"
            case .progress: "still catching up with a shard stream"
            case .caughtUp: "caught up with a shard stream"
            }
        }

        /// The values, as log metadata.
        public var metadata: [String: String] {
            switch self {
            case .behind(let stream, let behind, let cursor, let head):
                ["stream": stream, "behind": "\(behind)", "cursor": "\(cursor)", "stream_at": "\(head)"]
            case .progress(let stream, let percent, let cursor, let head, let behind, let rate, let left):
                [
                    "stream": stream, "percent": "\(percent)", "cursor": "\(cursor)", "stream_at": "\(head)", "behind": "\(behind)",
                    "messages_per_s": "\(rate)", "left": left.map { CatchUpProgress.duration($0) } ?? "no progress yet",
                ]
            case .caughtUp(let stream, let applied, let seconds):
                ["stream": stream, "applied": "\(applied)", "took": CatchUpProgress.duration(seconds)]
            }
        }
    }

    /// What to report for `stream` now, if anything.
    public mutating func observe(stream: String, head: UInt64?, cursor: UInt64?, now: Double) -> Report? {
        guard let head, let cursor else { return nil }
        let behind = head > cursor ? head - cursor : 0
        guard var run = runs[stream] else {
            guard behind >= Self.threshold else { return nil }
            runs[stream] = Run(startedAt: now, startCursor: cursor, startHead: head, lastLine: now)
            return .behind(stream: stream, behind: behind, cursor: cursor, head: head)
        }
        let applied = cursor > run.startCursor ? cursor - run.startCursor : 0
        let seconds = max(now - run.startedAt, 0.001)
        if behind == 0 {
            runs[stream] = nil
            return .caughtUp(stream: stream, applied: applied, seconds: seconds)
        }
        guard now - run.lastLine >= Self.interval else { return nil }
        run.lastLine = now
        runs[stream] = run
        let rate = Double(applied) / seconds
        let total = applied + behind
        let percent = total > 0 ? Int(Double(applied) * 100 / Double(total)) : 0
        return .progress(
            stream: stream, percent: percent, cursor: cursor, head: head, behind: behind, messagesPerSecond: Int(rate.rounded()),
            secondsLeft: rate > 0 ? Double(behind) / rate : nil)
    }

    static func duration(_ seconds: Double) -> String {
        if seconds < 10 { return String(format: "%.1f s", seconds) }
        if seconds < 120 { return "\(Int(seconds.rounded())) s" }
        if seconds < 7200 { return "\(Int((seconds / 60).rounded())) min" }
        return String(format: "%.1f h", seconds / 3600)
    }
}
