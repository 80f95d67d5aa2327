import Foundation

/// Progress lines for long transfers: percent and MB/s, at most every `interval` seconds and at the end.
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

    /// A line to log now, if it is time for one.
    public mutating func line(done: Int64, total: Int64) -> String? {
        let now = clock()
        guard now - lastReport >= interval || (done == total && total > 0) else { return nil }
        lastReport = now
        let megabytes = Double(done) / 1_048_576
        let rate = megabytes / max(now - started, 0.001)
        let percent = total > 0 ? Int(Double(done) * 100 / Double(total)) : 100
        return "\(what): \(percent)% of \(String(format: "%.1f", Double(total) / 1_048_576)) MB at \(String(format: "%.1f", rate)) MB/s"
    }
}
