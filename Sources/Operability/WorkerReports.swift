import HarmonyConfig
import IPC

/// What the workers last reported, kept by the supervisor's loop for `/health` and `-status`: each
/// worker's latest counters, totals that survive worker restarts, and the latest apply lag per stream.
/// Pure: fed by the loop, read by `NodeView.make`.
public struct WorkerReports: Sendable {
    private var latest: [WorkerRole: [String: Int64]] = [:]
    private var baselines = CounterBaselines()
    private var totals: [WorkerCounter: Int64] = [:]
    /// Mean lag of the samples in the newest report per stream (seconds), and when it came.
    private var lagSamples: [String: (lag: Double, at: Double)] = [:]
    /// How long a stream's lag stays "current" without new changes applied: after that nothing is in flight
    /// and `-status` shows none, instead of the lag of the last change forever.
    public static let lagFreshness = 10.0

    /// Counters whose totals `total` keeps across restarts.
    static let accumulated: Set<WorkerCounter> = [
        .publishedRows, .appliedEvents, .uniqueConflicts, .snapshotsSaved, .snapshotsRestored, .publishFailures, .futureStamps, .clampedLocalStamps,
    ]

    public init() {}

    public mutating func heartbeat(worker: WorkerRole, pid: Int32, counters: [ControlMessage.Counter]) {
        var values: [String: Int64] = [:]
        for counter in counters {
            values[counter.name] = counter.value
            if let (known, label) = counter.parsed, label == nil, Self.accumulated.contains(known) {
                totals[known, default: 0] += baselines.increment(worker: worker.rawValue, pid: pid, name: counter.name, total: counter.value)
            }
        }
        latest[worker] = values
    }

    public mutating func observed(_ list: [Observations], now: Double) {
        for series in list where series.metric == .applyLag {
            let count = series.counts.reduce(0) { $0 + Double($1) }
            if count > 0 { lagSamples[series.label] = (series.sums.reduce(0, +) / count, now) }
        }
    }

    /// Per stream, the lag of the changes applied within the last `lagFreshness` seconds.
    public func recentLag(now: Double) -> [String: Double] {
        lagSamples.filter { now - $0.value.at <= Self.lagFreshness }.mapValues(\.lag)
    }

    /// A worker's latest value of `name`, if it reported one.
    public func value(_ worker: WorkerRole, _ counter: WorkerCounter) -> Int64? { latest[worker]?[counter.rawValue] }

    /// Every latest value of `worker` whose name starts with `prefix/`, by what follows.
    public func labelled(_ worker: WorkerRole, _ counter: WorkerCounter) -> [String: Int64] {
        let prefix = counter.rawValue
        var found: [String: Int64] = [:]
        for (name, value) in latest[worker] ?? [:] where name.hasPrefix(prefix + "/") {
            found[String(name.dropFirst(prefix.count + 1))] = value
        }
        return found
    }

    /// The sum of `name` over every run of its worker since the supervisor started.
    public func total(_ counter: WorkerCounter) -> Int64 { totals[counter] ?? 0 }

    /// A worker that stopped reports nothing until its next heartbeat: its old values are not current.
    public mutating func forget(_ worker: WorkerRole) { latest[worker] = nil }
}
