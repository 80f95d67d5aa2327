/// Whether a shard stream makes progress on this node: its head (the stream's last sequence, from the
/// broker) is past the node's cursor (the last sequence applied, from the applier) and the cursor has not
/// moved for `threshold` seconds. `/health` and `-status` show it: a node whose consumer is gone, whose
/// fetches fail or whose applier is stuck used to look healthy while it received nothing.
public struct ShardStallWatch: Sendable {
    public static let defaultThreshold = 10.0
    public let threshold: Double
    /// Per stream: the cursor last seen while behind, and since when.
    private var behindSince: [String: (cursor: UInt64, since: Double)] = [:]

    public init(threshold: Double = defaultThreshold) { self.threshold = threshold }

    /// How long `stream` has made no progress while behind, once that reaches `threshold`; nil while it
    /// progresses, is caught up or either number is unknown.
    public mutating func observe(stream: String, head: UInt64?, cursor: UInt64?, now: Double) -> Double? {
        guard let head, let cursor, head > cursor else {
            behindSince[stream] = nil
            return nil
        }
        guard let last = behindSince[stream], last.cursor == cursor else {
            behindSince[stream] = (cursor, now)
            return nil
        }
        let stalled = now - last.since
        return stalled >= threshold ? stalled : nil
    }
}
