import Foundation

/// `harmonylite-benchmark [seconds] [run]`: the physical limits of this machine; saturation: replication with
/// 1 and 4 shards for single-row and 100-row transactions as fast as the writer goes; the operating range:
/// single-row transactions paced at 1, 10, 100 and 1,000 rows/s, and single rows written after the cluster
/// sat idle; the CPU every process used in each measurement window; prints tables. `run` keeps only the runs
/// whose label contains it (e.g. `paced`, `idle`, `snapshot`).
/// Environment: HL_BENCH_PACED_MIN_ROWS (default 200: a paced run writes at least this many rows, so it lasts
/// 200 s at 1 row/s and its p99 is not its slowest row), HL_BENCH_IDLE_SECONDS (idle before the first single row, default 60),
/// HL_BENCH_IDLE_GAP_SECONDS (idle before each later row, default 15), HL_BENCH_IDLE_WRITES (rows written after
/// idle, default 5), HL_BENCH_LAG_TRACE (a file: each row's commit time in ns and lag in µs appended, to see when
/// the slow ones come).
@main
struct Benchmark {
    /// The ceilings replication cannot beat, in rows or messages per second.
    struct Limits {
        var triggerSingle: Double
        var triggerBatch: Double
        var jetStream: Double
    }

    /// The CPU every process used in one run's measurement window.
    struct CPURow {
        var label: String
        var window: CPUWindow
    }

    static func main() throws {
        if CommandLine.arguments.dropFirst().first == "capture-cost" {
            try captureCost(Array(CommandLine.arguments.dropFirst(2)))
            return
        }
        if CommandLine.arguments.dropFirst().first == "pipeline-cost" {
            try PipelineCost.run(Array(CommandLine.arguments.dropFirst(2)))
            return
        }
        if CommandLine.arguments.dropFirst().first == "restore-merge" {
            try RestoreMergeCost.run(Array(CommandLine.arguments.dropFirst(2)))
            return
        }
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
        let limits = try physicalLimits(seconds: seconds, root: root)
        let selected = { (label: String) in only == nil || label.contains(only!) }
        var cpu = try saturationRuns(seconds: seconds, limits: limits, selected: selected, binaries: binaries, root: root)
        cpu += try operatingRange(seconds: seconds, selected: selected, binaries: binaries, root: root)
        printCPU(cpu)
        if only == nil || "snapshot".contains(only!) { try snapshotRates(directory: root) }
    }

    /// `harmonylite-benchmark capture-cost plain|triggers <rows per transaction> <rows>`: writes that many
    /// rows and exits, for counting instructions under `valgrind --tool=callgrind` (repeatable whatever
    /// else the machine does): `benchmarks/capture-cost.sh`.
    static func captureCost(_ arguments: [String]) throws {
        guard arguments.count == 3, let perTransaction = Int(arguments[1]), let rows = Int(arguments[2]), ["plain", "triggers"].contains(arguments[0]) else {
            throw BenchmarkError("usage: harmonylite-benchmark capture-cost plain|triggers <rows per transaction> <rows>")
        }
        let directory = "/tmp/hl-capture-cost-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let writer = try PhysicalLimits.Writer(directory: directory, triggers: arguments[0] == "triggers", rowsPerTransaction: perTransaction)
        var written = 0
        while written < rows { written += try writer.transaction() }
    }

    static func physicalLimits(seconds: Double, root: String) throws -> Limits {
        say("physical limits")
        let writers = try [(false, 1), (true, 1), (false, 100), (true, 100)].map {
            try PhysicalLimits.Writer(directory: root, triggers: $0.0, rowsPerTransaction: $0.1)
        }
        let rates = try PhysicalLimits.sqliteRowsPerSecond(writers, seconds: seconds * 2)
        let (plainSingle, triggerSingle, plainBatch, triggerBatch) = (rates[0], rates[1], rates[2], rates[3])
        let jetStream = try PhysicalLimits.jetStreamPublishesPerSecond(directory: root, count: 200_000, size: 200)
        say(
            "  SQLite single-row transactions: \(format(plainSingle)) rows/s plain, \(format(triggerSingle)) with capture triggers (cost ×\(format(plainSingle / triggerSingle, 2)))"
        )
        say(
            "  SQLite 100-row transactions:    \(format(plainBatch)) rows/s plain, \(format(triggerBatch)) with capture triggers (cost ×\(format(plainBatch / triggerBatch, 2)))"
        )
        say("  JetStream async publish (200 B, R1): \(format(jetStream)) msg/s\n")
        return Limits(triggerSingle: triggerSingle, triggerBatch: triggerBatch, jetStream: jetStream)
    }

    /// Writes as fast as the writer goes; "ratio" is replicated rows/s over the smaller physical limit.
    static func saturationRuns(seconds: Double, limits: Limits, selected: (String) -> Bool, binaries: String, root: String) throws -> [CPURow] {
        let runs: [(shards: Int, rows: Int, label: String)] = [
            (1, 1, "1 shard, 1-row tx"), (4, 1, "4 shards, 1-row tx"),
            (1, 100, "1 shard, 100-row tx"), (4, 100, "4 shards, 100-row tx"),
        ].filter { selected($0.label) }
        guard !runs.isEmpty else { return [] }
        say("| run | rows | written rows/s | replicated rows/s | ratio to limit | lag p50 | lag p99 | lag max | app tx p50 | app tx p99 |")
        say("|---|---|---|---|---|---|---|---|---|---|")
        var usageLines: [String] = []
        var waitLines: [String] = []
        var cpu: [CPURow] = []
        for run in runs {
            let cluster = try startCluster(label: run.label, shards: run.shards, binaries: binaries, root: root)
            defer { cluster.stop() }
            let result = try cluster.measure(label: run.label, seconds: seconds, rowsPerTransaction: run.rows, rate: nil)
            let limit = min(run.rows == 1 ? limits.triggerSingle : limits.triggerBatch, limits.jetStream)
            say(
                "| \(run.label) | \(result.rows) | \(format(result.writeRate)) | \(format(result.replicatedRate)) | \(format(result.replicatedRate / limit, 2)) | \(ms(result.lag.valueAtPercentile(50))) | \(ms(result.lag.valueAtPercentile(99))) | \(ms(result.lag.max)) | \(ms(result.transactionTimes.valueAtPercentile(50), 2)) | \(ms(result.transactionTimes.valueAtPercentile(99), 2)) |"
            )
            usageLines.append(
                "\(run.label): "
                    + result.usage.map { "\($0.name) \(format($0.cpuSeconds, 1)) s CPU / \(format($0.peakResidentMiB)) MiB" }.joined(separator: "; "))
            cpu.append(CPURow(label: run.label, window: result.cpu))
            let waits = result.waits
            waitLines.append(
                "| \(run.label) | \(waits.busyRequests) | \(waits.busyWaits) | \(ms(UInt64(waits.busyMicroseconds))) | "
                    + "\(waits.checkpoints) | \(ms(UInt64(waits.checkpointMicroseconds))) |")
        }
        say("\nThe application's waits on node 1 (SQLite's default busy handler and automatic checkpoints, counted):")
        say("| run | writes that found the lock taken | busy sleeps | time asleep | checkpoints its commits ran | time checkpointing |")
        say("|---|---|---|---|---|---|")
        for line in waitLines { say(line) }
        say("\nCPU seconds and peak resident memory per process, over the whole run (start-up included):")
        for line in usageLines { say("  " + line) }
        return cpu
    }

    /// Single-row transactions on 1 shard at the rates users write: paced runs, then single rows after idle.
    static func operatingRange(seconds: Double, selected: (String) -> Bool, binaries: String, root: String) throws -> [CPURow] {
        let minimumRows = environmentNumber("HL_BENCH_PACED_MIN_ROWS", default: 200)
        let idleSeconds = environmentNumber("HL_BENCH_IDLE_SECONDS", default: 60)
        let gapSeconds = environmentNumber("HL_BENCH_IDLE_GAP_SECONDS", default: 15)
        let idleWrites = max(1, Int(environmentNumber("HL_BENCH_IDLE_WRITES", default: 5)))
        let paced: [(rate: Double, label: String)] = [
            (1, "paced 1 row/s"), (10, "paced 10 rows/s"), (100, "paced 100 rows/s"), (1000, "paced 1,000 rows/s"),
        ].filter { selected($0.label) }
        let idleLabel = "first write after idle (\(format(idleSeconds)) s, then \(idleWrites - 1) × \(format(gapSeconds)) s)"
        guard !paced.isEmpty || selected(idleLabel) else { return [] }
        say(
            "\noperating range: 1 shard, single-row transactions; lag is commit on node 1 to visible on node 2, polled every \(format(Double(Watcher.pollMicroseconds) / 1000, 1)) ms (adds up to ~\(format(Double(Watcher.pollMicroseconds) / 1000 + 0.05, 2)) ms)"
        )
        say("| run | rows | lag p50 | lag p99 | lag max |")
        say("|---|---|---|---|---|")
        var cpu: [CPURow] = []
        for run in paced {
            let runSeconds = max(seconds, minimumRows / run.rate)
            let label = "\(run.label), \(format(runSeconds)) s"
            let cluster = try startCluster(label: run.label, shards: 1, binaries: binaries, root: root)
            defer { cluster.stop() }
            let result = try cluster.measure(label: label, seconds: runSeconds, rowsPerTransaction: 1, rate: run.rate)
            say("| \(label) | \(result.rows) | \(ms(result.lag.valueAtPercentile(50))) | \(ms(result.lag.valueAtPercentile(99))) | \(ms(result.lag.max)) |")
            cpu.append(CPURow(label: label, window: result.cpu))
        }
        if selected(idleLabel) {
            cpu.append(try idleRun(label: idleLabel, idleSeconds: idleSeconds, gapSeconds: gapSeconds, writes: idleWrites, binaries: binaries, root: root))
        }
        return cpu
    }

    /// A fresh cluster left idle, then `writes` single rows, each after an idle gap (the first the longest); then a
    /// strace check of how our processes poll in the idle seconds after the last row.
    static func idleRun(label: String, idleSeconds: Double, gapSeconds: Double, writes: Int, binaries: String, root: String) throws -> CPURow {
        let cluster = try startCluster(label: "idle", shards: 1, binaries: binaries, root: root)
        defer { cluster.stop() }
        let result = try cluster.measureFirstWrites(idleSeconds: idleSeconds, gapSeconds: gapSeconds, writes: writes)
        say("| \(label) | \(result.lags.count) | \(ms(result.lag.valueAtPercentile(50))) | \(ms(result.lag.valueAtPercentile(99))) | \(ms(result.lag.max)) |")
        say("\n\(label), each row's lag: " + result.lags.map { ms($0) }.joined(separator: ", "))
        try idlePolls(cluster: cluster, root: root)
        return CPURow(label: "idle \(format(idleSeconds)) s, before the first write", window: result.cpu)
    }

    /// Counts our processes' poll/ppoll calls under strace for the 5 s right after a row reached node 2, with
    /// no writes: a loop that does not settle back to waiting after a write shows here.
    static func idlePolls(cluster: ReplicationRun, root: String) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/strace") else { return say("\nidle poll check skipped: no /usr/bin/strace") }
        let ours = cluster.processes.filter { !$0.name.hasSuffix("nats-server") && $0.name != "benchmark" }
        let counts = try IdlePolls.count(ours, seconds: 5, directory: root)
        say(
            "\nidle poll/ppoll calls in 5 s under strace -f (right after the last row reached node 2, no writes); timeout 0 returns at once, many of them is a spin"
        )
        say("| process | poll/ppoll calls | with timeout 0 |")
        say("|---|---|---|")
        for count in counts { say("| \(count.name) | \(count.calls) | \(count.zeroTimeout) |") }
    }

    /// CPU of every process per measurement window: from the first write until node 2 has every row, or the
    /// first idle gap of the idle run. Read from /proc at the window's start and end (10 ms ticks).
    static func printCPU(_ rows: [CPURow]) {
        guard !rows.isEmpty else { return }
        let names = ReplicationRun.processNames
        say("\nCPU per process over each measurement window, % of one core (benchmark: the writer and node 2's watcher)")
        say("| run | seconds | " + names.joined(separator: " | ") + " |")
        say("|---|---|" + String(repeating: "---|", count: names.count))
        for row in rows {
            let percents = names.map { row.window.percent[$0].map { format($0, 1) } ?? "–" }
            say("| \(row.label) | \(format(row.window.seconds, 1)) | " + percents.joined(separator: " | ") + " |")
        }
    }

    static func startCluster(label: String, shards: Int, binaries: String, root: String) throws -> ReplicationRun {
        let directory = root + "/" + String(label.map { $0.isLetter || $0.isNumber ? $0 : "-" })
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return try ReplicationRun(directory: directory, binaries: binaries, shards: shards)
    }

    static func environmentNumber(_ name: String, default value: Double) -> Double {
        ProcessInfo.processInfo.environment[name].flatMap(Double.init) ?? value
    }

    static func ms(_ microseconds: UInt64, _ digits: Int = 1) -> String { format(Double(microseconds) / 1000, digits) + " ms" }

    static func snapshotRates(directory: String) throws {
        let (bytes, steps) = try SnapshotRates.measure(directory: directory, megabytes: 100)
        let megabytes = Double(bytes) / 1_048_576
        say("\nsnapshot of a \(format(megabytes, 1)) MB database on the nats store (one local nats-server, R1)")
        say("| step | seconds | MB/s |")
        say("|---|---|---|")
        for step in steps { say("| \(step.name) | \(format(step.seconds, 2)) | \(format(megabytes / step.seconds, 1)) |") }
    }
}
