import BinaryCoding

/// Histogram samples a worker took since its last heartbeat, for one series (a metric and one label value),
/// already sorted into the metric's buckets: per bucket, how many samples fell in it and their sum. The
/// supervisor adds them to its histogram, so counts, buckets and sums are exact without sending every sample.
public struct Observations: Equatable, Sendable {
    public var metric: HistogramMetric
    /// The series' label value (the stream for the lag), or "".
    public var label: String
    /// One entry per bucket of `metric.bounds`, plus the last one for samples above every bound.
    public var counts: [UInt32]
    public var sums: [Double]

    public init(metric: HistogramMetric, label: String, counts: [UInt32], sums: [Double]) {
        self.metric = metric
        self.label = label
        self.counts = counts
        self.sums = sums
    }

    func write(to w: inout BinaryWriter) {
        w.write(metric.rawValue)
        w.write(label)
        for index in 0..<metric.bucketCount {
            w.write(index < counts.count ? counts[index] : 0)
            w.write((index < sums.count ? sums[index] : 0).bitPattern)
        }
    }

    init(from r: inout BinaryReader) throws {
        let raw = try r.readUInt8()
        guard let metric = HistogramMetric(rawValue: raw) else { throw UnknownHistogramMetric(rawValue: raw) }
        self.metric = metric
        label = try r.readString()
        counts = []
        sums = []
        for _ in 0..<metric.bucketCount {
            counts.append(try r.readUInt32())
            sums.append(Double(bitPattern: try r.readUInt64()))
        }
    }
}

/// The histograms workers sample. Their buckets are fixed here, on both sides of the socket.
public enum HistogramMetric: UInt8, Sendable, CaseIterable {
    /// Commit on the origin (the event's HLC stamp) to commit here, per stream (applier).
    case applyLag = 1
    /// Counting the changes waiting to be published (capturer).
    case countChanges = 2
    /// Reading a batch of change rows from the change log (capturer).
    case scanChanges = 3

    /// Upper bounds in seconds, increasing.
    public var bounds: [Double] {
        switch self {
        case .applyLag: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]
        case .countChanges, .scanChanges: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
        }
    }

    /// `bounds.count` plus the bucket above every bound.
    public var bucketCount: Int { bounds.count + 1 }
}

/// A worker's histogram samples since the last heartbeat, per series. Pure: `record` adds, `take` empties.
public struct ObservationAccumulator: Sendable {
    private var series: [Key: (counts: [UInt32], sums: [Double])] = [:]

    private struct Key: Hashable, Sendable {
        var metric: HistogramMetric
        var label: String
    }

    public init() {}

    /// Adds one sample (seconds; negative values count as 0, NaN is dropped).
    public mutating func record(_ metric: HistogramMetric, _ value: Double, label: String = "") {
        guard !value.isNaN else { return }
        let value = max(0, value)
        let bounds = metric.bounds
        let index = bounds.firstIndex { value <= $0 } ?? bounds.count
        let key = Key(metric: metric, label: label)
        var entry = series[key] ?? (Array(repeating: 0, count: metric.bucketCount), Array(repeating: 0, count: metric.bucketCount))
        if entry.counts[index] < UInt32.max {
            entry.counts[index] += 1
            entry.sums[index] += value
        }
        series[key] = entry
    }

    /// What was recorded since the last `take`, and forgets it.
    public mutating func take() -> [Observations] {
        defer { series.removeAll(keepingCapacity: true) }
        return series.map { Observations(metric: $0.key.metric, label: $0.key.label, counts: $0.value.counts, sums: $0.value.sums) }
            .sorted { ($0.metric.rawValue, $0.label) < ($1.metric.rawValue, $1.label) }
    }

    public var isEmpty: Bool { series.isEmpty }
}

/// An `Observations` naming a histogram this build does not know.
struct UnknownHistogramMetric: Error, CustomStringConvertible {
    var rawValue: UInt8
    var description: String { "unknown histogram metric \(rawValue)" }
}
