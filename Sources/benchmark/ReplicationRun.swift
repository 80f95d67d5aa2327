import Foundation
import HarmonyConfig
import Histogram
import SQLiteKit
import Synchronization

/// Two real nodes (supervisor, workers, embedded nats-servers clustered on loopback). This process is the
/// application: it writes rows carrying their commit time on node 1, and watches node 2, recording for every
/// row the time from commit to visible.
final class ReplicationRun {
    struct Result {
        var label: String
        var rows: Int
        var writeRate: Double
        var replicatedRate: Double
        var lag: Histogram<UInt64>
        var transactionTimes: Histogram<UInt64>
        var usage: [ProcessUsage]
        var cpu: CPUWindow
        /// The application's connection: its busy waits and the checkpoints its commits ran.
        var waits: ApplicationWaits
    }

    /// Single rows written after the cluster sat idle: the CPU of the first idle gap, and each row's lag.
    struct IdleResult {
        var cpu: CPUWindow
        var lags: [UInt64]
        var lag: Histogram<UInt64>
    }

    /// The processes of a node by role, in the order the CPU table prints them.
    static let roles = ["supervisor"] + ([.nats, .broker, .capturer, .applier, .snapshotter] as [WorkerRole]).map(\.rawValue)
    /// The names `processes` gives: "n1 capturer", … for both nodes, then "benchmark" (this process: the
    /// writer and node 2's watcher).
    static let processNames = (1...2).flatMap { node in roles.map { "n\(node) \($0)" } } + ["benchmark"]

    let directory: String
    let binaries: String
    let shards: Int
    private var nodes: [Process] = []

    init(directory: String, binaries: String, shards: Int) throws {
        self.directory = directory
        self.binaries = binaries
        self.shards = shards
        let clientPorts = [freePort(), freePort()]
        let routePorts = [freePort(), freePort()]
        for index in 0..<2 {
            let path = "\(directory)/node\(index + 1).db"
            try sqliteShell(path, "PRAGMA journal_mode=WAL; CREATE TABLE bench(id INTEGER PRIMARY KEY, t_ns INTEGER, payload TEXT);")
            let config = """
                db_path = "\(path)"
                node_id = \(index + 1)
                seq_map_path = "\(directory)/node\(index + 1)-seq-map.cbor"
                [replication_log]
                shards = \(shards)
                max_entries = 10000000
                [snapshot]
                enabled = false
                [nats]
                bind_address = "127.0.0.1:\(clientPorts[index])"
                """
            _ = FileManager.default.createFile(atPath: "\(directory)/node\(index + 1).toml", contents: Data(config.utf8))
            let node = Process()
            node.executableURL = URL(fileURLWithPath: binaries + "/harmonylite")
            node.arguments = [
                "-config", "\(directory)/node\(index + 1).toml", "-cluster-addr", "127.0.0.1:\(routePorts[index])",
                "-cluster-peers", "nats://127.0.0.1:\(routePorts[1 - index])/",
            ]
            _ = FileManager.default.createFile(atPath: "\(directory)/node\(index + 1).log", contents: nil)
            node.standardError = FileHandle(forWritingAtPath: "\(directory)/node\(index + 1).log")
            node.standardOutput = node.standardError
            try node.run()
            nodes.append(node)
        }
        let deadline = now() + 60
        for index in 0..<2 {
            while !((try? String(contentsOfFile: "\(directory)/node\(index + 1).log", encoding: .utf8))?.contains("all processes ready") ?? false) {
                guard now() < deadline, nodes[index].isRunning else {
                    throw BenchmarkError("node \(index + 1) did not become ready; see \(directory)/node\(index + 1).log")
                }
                usleep(20_000)
            }
        }
    }

    /// Every process of both nodes, and this one, named as in `processNames`.
    var processes: [WatchedProcess] {
        var processes: [WatchedProcess] = []
        for (index, node) in nodes.enumerated() {
            processes.append(WatchedProcess(name: "n\(index + 1) supervisor", pid: node.processIdentifier))
            for (name, pid) in children(of: node.processIdentifier) {
                let role = WorkerRole.allCases.first { $0.executableName == name }?.rawValue ?? name
                processes.append(WatchedProcess(name: "n\(index + 1) \(role)", pid: pid))
            }
        }
        return processes + [WatchedProcess(name: "benchmark", pid: getpid())]
    }

    func stop() {
        for node in nodes where node.isRunning { kill(node.processIdentifier, SIGTERM) }
        for node in nodes { node.waitUntilExit() }
    }

    /// Writes for `seconds`, in transactions of `rowsPerTransaction`, at most `rate` rows per second (nil:
    /// as fast as it goes), then waits until node 2 has every row.
    func measure(label: String, seconds: Double, rowsPerTransaction: Int, rate: Double?) throws -> Result {
        let writer = try Writer(path: "\(directory)/node1.db")
        let watcher = Watcher(path: "\(directory)/node2.db")
        Thread { watcher.run() }.start()
        let cpuAtStart = CPUSample(processes)

        // How long the application's transactions take while we capture and apply next to it.
        var transactionTimes = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        let start = now()
        var written = 0
        while now() - start < seconds {
            if let rate {
                let due = start + Double(written) / rate
                let wait = due - now()
                if wait > 0 { usleep(UInt32(wait * 1_000_000)) }
            }
            let began = wallNanoseconds()
            if rowsPerTransaction > 1 { try writer.database.execute("BEGIN") }
            for _ in 0..<rowsPerTransaction {
                written += 1
                try writer.insert(id: written)
            }
            if rowsPerTransaction > 1 { try writer.database.execute("COMMIT") }
            _ = transactionTimes.record(UInt64(max(0, wallNanoseconds() - began)) / 1000)
        }
        let writeSeconds = now() - start
        let deadline = now() + 120
        while watcher.seen < written {
            guard now() < deadline else { throw BenchmarkError("\(label): node 2 has \(watcher.seen) of \(written) rows after 120 s") }
            usleep(1000)
        }
        let allVisible = watcher.lastVisible - start
        watcher.stop()
        let cpu = CPUWindow(from: cpuAtStart, to: CPUSample(processes))
        var usage: [ProcessUsage] = []
        for (index, node) in nodes.enumerated() {
            usage.append(ProcessUsage(pid: node.processIdentifier, name: "node\(index + 1) harmonylite")!)
            for (name, pid) in children(of: node.processIdentifier) {
                if let entry = ProcessUsage(pid: pid, name: "node\(index + 1) \(name)") { usage.append(entry) }
            }
        }
        return Result(
            label: label, rows: written, writeRate: Double(written) / writeSeconds, replicatedRate: Double(written) / allVisible,
            lag: watcher.histogram, transactionTimes: transactionTimes, usage: usage, cpu: cpu, waits: writer.waits)
    }

    /// Sits idle for `idleSeconds` (measuring every process's CPU over that window), then writes one row and
    /// waits until node 2 has it; `writes` rows in all, the later ones each after `gapSeconds` of idle.
    /// Node 2 is watched only while a row is on its way, so the idle window has no watcher polling.
    func measureFirstWrites(idleSeconds: Double, gapSeconds: Double, writes: Int) throws -> IdleResult {
        let writer = try Writer(path: "\(directory)/node1.db")
        let cpuAtStart = CPUSample(processes)
        Thread.sleep(forTimeInterval: idleSeconds)
        let cpu = CPUWindow(from: cpuAtStart, to: CPUSample(processes))
        var lags: [UInt64] = []
        var lag = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        for written in 1...writes {
            if written > 1 { Thread.sleep(forTimeInterval: gapSeconds) }
            let rowLag = try lagOfOneRow(writer: writer, id: written)
            lags.append(rowLag)
            _ = lag.record(rowLag)
        }
        return IdleResult(cpu: cpu, lags: lags, lag: lag)
    }

    /// Writes row `id` (the rows before it are on node 2 already) and returns its commit→visible lag in µs.
    private func lagOfOneRow(writer: Writer, id: Int) throws -> UInt64 {
        let watcher = Watcher(path: "\(directory)/node2.db", after: Int64(id - 1))
        Thread { watcher.run() }.start()
        defer { watcher.stop() }
        try writer.insert(id: id)
        let deadline = now() + 120
        while watcher.seen < 1 {
            guard now() < deadline else { throw BenchmarkError("row \(id) is not on node 2 after 120 s") }
            usleep(1000)
        }
        return watcher.histogram.max
    }
}

/// The application on node 1: inserts rows carrying their commit time and a 100-byte payload.
struct Writer {
    let database: SQLiteDatabase
    /// Counted with SQLite's default behaviour kept (5 s busy timeout, checkpoint at 1,000 WAL frames).
    let waits: ApplicationWaits
    private let statement: SQLiteStatement
    private let payload = SQLiteValue.text(String(repeating: "x", count: 100))

    init(path: String) throws {
        database = try SQLiteDatabase(existingPath: path)
        try database.execute("PRAGMA synchronous=NORMAL")
        waits = database.countWaits()
        statement = try database.prepare("INSERT INTO bench(id, t_ns, payload) VALUES (?, ?, ?)")
    }

    func insert(id: Int) throws {
        try statement.run([.integer(Int64(id)), .integer(wallNanoseconds()), payload])
    }
}

/// Polls node 2's `bench` every `pollMicroseconds` for rows after `after` it has not seen; for each, records
/// now minus its commit time. Every lag it records includes up to one polling interval (plus the sleep's
/// timer slack, ~0.05 ms). With several shards rows arrive out of id order, so it reads from the highest id
/// below which it has seen every row, and remembers which rows above that it has seen. (It used to read an
/// arrivals table an application trigger on node 2 filled; the applier's replica role rightly keeps
/// application triggers from firing for replicated rows.)
final class Watcher: @unchecked Sendable {
    static let pollMicroseconds: UInt32 = 200
    private let path: String
    private let after: Int64
    private let state = Mutex<(seen: Int, lastVisible: Double, stopped: Bool)>((0, 0, false))
    private let lagHistogram = Mutex(Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three))

    init(path: String, after: Int64 = 0) {
        self.path = path
        self.after = after
    }

    var seen: Int { state.withLock { $0.seen } }
    var lastVisible: Double { state.withLock { $0.lastVisible } }
    var histogram: Histogram<UInt64> { lagHistogram.withLock { $0 } }
    func stop() { state.withLock { $0.stopped = true } }

    func run() {
        guard let database = try? SQLiteDatabase(existingPath: path), let query = try? database.prepare("SELECT id, t_ns FROM bench WHERE id > ? ORDER BY id")
        else { return }
        // `HL_BENCH_LAG_TRACE=<file>`: each row's commit time (ns since 1970) and lag (µs) appended there, to see
        // when the slow ones come (periodic work, say), not only how many there are.
        let trace = ProcessInfo.processInfo.environment["HL_BENCH_LAG_TRACE"].flatMap { fopen($0, "a") }
        defer { if let trace { fclose(trace) } }
        var contiguous = after
        var seenAbove: Set<Int64> = []
        while !state.withLock({ $0.stopped }) {
            let rows = (try? query.all([.integer(contiguous)])) ?? []
            let visibleAt = wallNanoseconds()
            let visibleMonotonic = now()
            var fresh = 0
            lagHistogram.withLock { histogram in
                for row in rows {
                    guard case .integer(let id) = row[0], seenAbove.insert(id).inserted else { continue }
                    fresh += 1
                    guard case .integer(let committed) = row[1] else { continue }
                    _ = histogram.record(UInt64(max(0, visibleAt - committed)) / 1000)
                    if let trace { fputs("\(committed) \(max(0, visibleAt - committed) / 1000)\n", trace) }
                }
            }
            while seenAbove.remove(contiguous + 1) != nil { contiguous += 1 }
            if fresh > 0 {
                let count = fresh
                state.withLock {
                    $0.seen += count; $0.lastVisible = visibleMonotonic
                }
            }
            usleep(Watcher.pollMicroseconds)
        }
    }
}
