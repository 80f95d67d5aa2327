import Foundation

/// `harmonylite-benchmark [seconds] [run]`: the physical limits of this machine, then replication with 1 and 4
/// shards for single-row and 100-row transactions, and a paced 1,000 rows/s run for lag; prints tables.
/// `run` keeps only the runs whose label contains it (e.g. `paced`).
@main
struct Benchmark {
    static func main() throws {
        let seconds = CommandLine.arguments.dropFirst().first.flatMap(Double.init) ?? 5
        let binaries = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        let root = "/tmp/hl-benchmark-\(getpid())"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        do {
            let only = CommandLine.arguments.dropFirst(2).first
            try run(seconds: seconds, only: only, binaries: binaries, root: root)
            try? FileManager.default.removeItem(atPath: root)
        } catch {
            say("benchmark failed: \(error)\nits files (databases, node logs) are kept in \(root)")
            exit(1)
        }
    }

    static func run(seconds: Double, only: String?, binaries: String, root: String) throws {
        say("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB; \(seconds) s per run\n")
        say("physical limits")
        let plainSingle = try PhysicalLimits.sqliteRowsPerSecond(directory: root, triggers: false, rowsPerTransaction: 1, seconds: seconds / 2)
        let triggerSingle = try PhysicalLimits.sqliteRowsPerSecond(directory: root, triggers: true, rowsPerTransaction: 1, seconds: seconds / 2)
        let plainBatch = try PhysicalLimits.sqliteRowsPerSecond(directory: root, triggers: false, rowsPerTransaction: 100, seconds: seconds / 2)
        let triggerBatch = try PhysicalLimits.sqliteRowsPerSecond(directory: root, triggers: true, rowsPerTransaction: 100, seconds: seconds / 2)
        let jetStream = try PhysicalLimits.jetStreamPublishesPerSecond(directory: root, count: 200_000, size: 200)
        say("  SQLite single-row transactions: \(format(plainSingle)) rows/s plain, \(format(triggerSingle)) with capture triggers (cost ×\(format(plainSingle / triggerSingle, 2)))")
        say("  SQLite 100-row transactions:    \(format(plainBatch)) rows/s plain, \(format(triggerBatch)) with capture triggers (cost ×\(format(plainBatch / triggerBatch, 2)))")
        say("  JetStream async publish (200 B, R1): \(format(jetStream)) msg/s\n")

        let runs: [(shards: Int, rows: Int, rate: Double?, label: String)] = [
            (1, 1, nil, "1 shard, 1-row tx"), (4, 1, nil, "4 shards, 1-row tx"),
            (1, 100, nil, "1 shard, 100-row tx"), (4, 100, nil, "4 shards, 100-row tx"),
            (1, 1, 1000, "1 shard, paced 1,000 rows/s"),
        ].filter { only == nil || $0.label.contains(only!) }
        say("| run | rows | written rows/s | replicated rows/s | ratio to limit | lag p50 | lag p99 | lag max | app tx p50 | app tx p99 |")
        say("|---|---|---|---|---|---|---|---|---|---|")
        var usageLines: [String] = []
        for (index, run) in runs.enumerated() {
            let directory = "\(root)/run\(index)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let cluster = try ReplicationRun(directory: directory, binaries: binaries, shards: run.shards)
            defer { cluster.stop() }
            let result = try cluster.measure(label: run.label, seconds: seconds, rowsPerTransaction: run.rows, rate: run.rate)
            let limit = min(run.rows == 1 ? triggerSingle : triggerBatch, jetStream)
            let ratio = run.rate == nil ? format(result.replicatedRate / limit, 2) : "paced"
            func ms(_ microseconds: UInt64, _ digits: Int = 1) -> String { format(Double(microseconds) / 1000, digits) + " ms" }
            say("| \(run.label) | \(result.rows) | \(format(result.writeRate)) | \(format(result.replicatedRate)) | \(ratio) | \(ms(result.lag.valueAtPercentile(50))) | \(ms(result.lag.valueAtPercentile(99))) | \(ms(result.lag.max)) | \(ms(result.transactionTimes.valueAtPercentile(50), 2)) | \(ms(result.transactionTimes.valueAtPercentile(99), 2)) |")
            usageLines.append("\(run.label): " + result.usage.map { "\($0.name) \(format($0.cpuSeconds, 1)) s CPU / \(format($0.peakResidentMiB)) MiB" }.joined(separator: "; "))
        }
        say("\nCPU seconds and peak resident memory per process, over the whole run (start-up included):")
        for line in usageLines { say("  " + line) }
        if only == nil || "snapshot".contains(only!) { try snapshotRates(directory: root) }
    }

    static func snapshotRates(directory: String) throws {
        let (bytes, steps) = try SnapshotRates.measure(directory: directory, megabytes: 100)
        let megabytes = Double(bytes) / 1_048_576
        say("\nsnapshot of a \(format(megabytes, 1)) MB database on the nats store (one local nats-server, R1)")
        say("| step | seconds | MB/s |")
        say("|---|---|---|")
        for step in steps { say("| \(step.name) | \(format(step.seconds, 2)) | \(format(megabytes / step.seconds, 1)) |") }
    }
}
