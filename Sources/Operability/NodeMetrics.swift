import HarmonyConfig
import IPC
import Prometheus

/// The node's Prometheus metrics, fed by the supervisor's loop (workers' heartbeat counters and histogram
/// samples, the supervisor's own view of its workers) and read by the HTTP thread (`registry.emitToBuffer()`;
/// swift-prometheus' registry and metrics are safe to use from both threads).
///
/// Every name is `<namespace>_<subsystem>_<name>` with empty parts left out, every series carries
/// `node_id`, as HarmonyLite's did (`[prometheus] namespace`, `subsystem`). HarmonyLite's five keep their
/// names; its two histograms now hold seconds (HarmonyLite put microseconds in second-sized buckets).
///
/// Not thread-safe itself: call everything but `registry` from the supervisor's loop only.
public final class NodeMetrics {
    public let registry = PrometheusCollectorRegistry()
    private let namespace: String
    private let subsystem: String
    private let nodeLabel: (String, String)
    private var baselines = CounterBaselines()
    private var histograms: [String: ValueHistogram] = [:]
    /// `published_total`'s value, which its alias `published` shows.
    private var publishedTotal = 0.0

    public init(namespace: String, subsystem: String, nodeID: UInt64) {
        self.namespace = namespace
        self.subsystem = subsystem
        nodeLabel = ("node_id", String(nodeID))
        // HarmonyLite's five exist from the start, as they did there.
        _ = counter(MetricCatalog.published)
        gauge(MetricCatalog.publishedAlias).set(0.0)
        gauge(MetricCatalog.pendingPublish).set(0.0)
        _ = histogram(MetricCatalog.countChanges, label: nil)
        _ = histogram(MetricCatalog.scanChanges, label: nil)
        gauge(MetricCatalog.schemaMismatchPaused).set(0.0)
    }

    /// A worker's heartbeat: its running totals become increments of the node's counters, its levels set
    /// gauges. Unknown names are ignored (a newer worker may report more).
    public func heartbeat(worker: WorkerRole, pid: Int32, counters: [ControlMessage.Counter]) {
        for counter in counters {
            guard let (known, label) = counter.parsed, let metric = MetricCatalog.forWorkerCounter[known] else { continue }
            switch metric.kind {
            case .counter:
                let increment = baselines.increment(worker: worker.rawValue, pid: pid, name: counter.name, total: counter.value)
                let series = self.counter(metric, label: label)
                if increment > 0 { series.increment(by: increment) }
                if metric.name == MetricCatalog.published.name, increment > 0 {
                    publishedTotal += Double(increment)
                    gauge(MetricCatalog.publishedAlias).set(publishedTotal)
                }
            case .gauge:
                gauge(metric, label: label).set(Double(counter.value) * metric.scale)
            case .flag:
                gauge(metric, label: label).set(counter.value > 0 ? 1.0 : 0.0)
            case .histogram, .timestamp:
                continue
            }
        }
    }

    /// A worker's histogram samples since its last heartbeat. Each bucket's samples are added at their
    /// mean, which lies in that bucket: counts, buckets and sums come out exact.
    public func observed(_ list: [Observations]) {
        for series in list {
            guard let metric = MetricCatalog.forHistogram[series.metric] else { continue }
            let histogram = histogram(metric, label: series.label.isEmpty ? nil : series.label)
            for (count, sum) in zip(series.counts, series.sums) where count > 0 {
                let mean = sum / Double(count)
                for _ in 0..<min(count, 100_000) { histogram.record(mean) }
            }
        }
    }

    /// What the supervisor knows of one worker: whether it runs, its restarts, its memory and CPU.
    public func worker(_ sample: WorkerSample) {
        let label = sample.role.rawValue
        gauge(MetricCatalog.workerUp, label: label).set(sample.up ? 1.0 : 0.0)
        let restarts = baselines.increment(worker: "supervisor", pid: 0, name: "restarts/" + label, total: Int64(sample.restarts))
        if restarts > 0 {
            counter(MetricCatalog.workerRestarts, label: label).increment(by: restarts)
        } else {
            _ = counter(MetricCatalog.workerRestarts, label: label)
        }
        let reloads = baselines.increment(worker: "supervisor", pid: 0, name: "reloads/" + label, total: Int64(sample.reloads))
        if reloads > 0 {
            counter(MetricCatalog.workerReloads, label: label).increment(by: reloads)
        } else {
            _ = counter(MetricCatalog.workerReloads, label: label)
        }
        gauge(MetricCatalog.workerResidentMemory, label: label).set(Double(sample.residentBytes ?? 0))
        if let pid = sample.pid, let cpu = sample.cpuSeconds {
            // Kept in milliseconds for the baseline (integers), exported in seconds.
            let grown = baselines.increment(worker: "cpu/" + label, pid: pid, name: "cpu", total: Int64(cpu * 1000))
            if grown > 0 { counter(MetricCatalog.workerCPU, label: label).increment(by: Double(grown) / 1000) }
        } else {
            _ = counter(MetricCatalog.workerCPU, label: label)
        }
    }

    /// Snapshot age is a level that grows by itself: set from the newest snapshot's time at every tick.
    public func snapshotAge(seconds: Double?) {
        gauge(MetricCatalog.snapshotAge).set(seconds ?? -1)
    }

    public func uptime(seconds: Double) {
        gauge(MetricCatalog.uptime).set(seconds)
    }

    // MARK: making metrics

    private func descriptor(_ metric: MetricCatalog.Metric) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: namespace, subsystem: subsystem, metricName: metric.name, unitName: metric.unit, helpText: metric.help)
    }

    private func labels(_ metric: MetricCatalog.Metric, _ label: String?) -> [(String, String)] {
        guard let labelName = metric.label, let label else { return [nodeLabel] }
        return [nodeLabel, (labelName, label)]
    }

    private func counter(_ metric: MetricCatalog.Metric, label: String? = nil) -> Counter {
        registry.makeCounter(descriptor: descriptor(metric), labels: labels(metric, label))
    }

    private func gauge(_ metric: MetricCatalog.Metric, label: String? = nil) -> Gauge {
        registry.makeGauge(descriptor: descriptor(metric), labels: labels(metric, label))
    }

    private func histogram(_ metric: MetricCatalog.Metric, label: String?) -> ValueHistogram {
        let key = metric.name + "/" + (label ?? "")
        if let existing = histograms[key] { return existing }
        let made = registry.makeValueHistogram(descriptor: descriptor(metric), labels: labels(metric, label), buckets: metric.buckets)
        histograms[key] = made
        return made
    }

}

/// One worker as the supervisor sees it, for `NodeMetrics.worker`.
public struct WorkerSample: Sendable, Equatable {
    public var role: WorkerRole
    public var up: Bool
    public var pid: Int32?
    public var restarts: Int
    public var reloads: Int
    public var residentBytes: Int64?
    public var cpuSeconds: Double?

    public init(role: WorkerRole, up: Bool, pid: Int32?, restarts: Int, reloads: Int = 0, residentBytes: Int64?, cpuSeconds: Double?) {
        self.role = role
        self.up = up
        self.pid = pid
        self.restarts = restarts
        self.reloads = reloads
        self.residentBytes = residentBytes
        self.cpuSeconds = cpuSeconds
    }
}
