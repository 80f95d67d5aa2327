/// Turns the running totals a worker reports with every heartbeat into increments for the node's counters.
/// A worker's totals start again at 0 when it restarts (a new pid): from then on they count from 0 again,
/// so nothing is counted twice and nothing counted before the restart is lost from the node's counter.
/// Pure: the caller applies the increments.
public struct CounterBaselines: Sendable {
    private var pids: [String: Int32] = [:]
    private var last: [String: [String: Int64]] = [:]

    public init() {}

    /// How much `name` grew since `worker`'s last report (its whole value after a restart); 0 for a total
    /// that went down without a restart (never negative: Prometheus counters only grow).
    public mutating func increment(worker: String, pid: Int32, name: String, total: Int64) -> Int64 {
        if pids[worker] != pid {
            pids[worker] = pid
            last[worker] = [:]
        }
        let previous = last[worker]?[name] ?? 0
        last[worker, default: [:]][name] = total
        return total >= previous ? total - previous : 0
    }
}
