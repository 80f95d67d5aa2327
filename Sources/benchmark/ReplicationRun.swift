import Foundation
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
    }

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
            // Node 2 records arrivals in commit order: with several shards rows arrive out of id order. The
            // arrivals table has no primary key, so it is node-local (never captured).
            let arrivals = """
                CREATE TABLE arrivals(id INTEGER, t_ns INTEGER);
                CREATE TRIGGER bench_arrival AFTER INSERT ON bench BEGIN INSERT INTO arrivals VALUES (new.id, new.t_ns); END;
                """
            try sqliteShell(path, "PRAGMA journal_mode=WAL; CREATE TABLE bench(id INTEGER PRIMARY KEY, t_ns INTEGER, payload TEXT);" + (index == 1 ? arrivals : ""))
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
            node.arguments = ["-config", "\(directory)/node\(index + 1).toml", "-cluster-addr", "127.0.0.1:\(routePorts[index])",
                              "-cluster-peers", "nats://127.0.0.1:\(routePorts[1 - index])/"]
            _ = FileManager.default.createFile(atPath: "\(directory)/node\(index + 1).log", contents: nil)
            node.standardError = FileHandle(forWritingAtPath: "\(directory)/node\(index + 1).log")
            node.standardOutput = node.standardError
            try node.run()
            nodes.append(node)
        }
        let deadline = now() + 60
        for index in 0..<2 {
            while !((try? String(contentsOfFile: "\(directory)/node\(index + 1).log", encoding: .utf8))?.contains("all processes ready") ?? false) {
                guard now() < deadline, nodes[index].isRunning else { throw BenchmarkError("node \(index + 1) did not become ready; see \(directory)/node\(index + 1).log") }
                usleep(20_000)
            }
        }
    }

    func stop() {
        for node in nodes where node.isRunning { kill(node.processIdentifier, SIGTERM) }
        for node in nodes { node.waitUntilExit() }
    }

    /// Writes for `seconds`, in transactions of `rowsPerTransaction`, at most `rate` rows per second (nil:
    /// as fast as it goes), then waits until node 2 has every row.
    func measure(label: String, seconds: Double, rowsPerTransaction: Int, rate: Double?) throws -> Result {
        let writer = try SQLiteDatabase(existingPath: "\(directory)/node1.db")
        try writer.execute("PRAGMA synchronous=NORMAL")
        let insert = try writer.prepare("INSERT INTO bench(id, t_ns, payload) VALUES (?, ?, ?)")
        let payload = SQLiteValue.text(String(repeating: "x", count: 100))
        let watcher = Watcher(path: "\(directory)/node2.db")
        let thread = Thread { watcher.run() }
        thread.start()

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
            if rowsPerTransaction > 1 { try writer.execute("BEGIN") }
            for _ in 0..<rowsPerTransaction {
                written += 1
                try insert.run([.integer(Int64(written)), .integer(wallNanoseconds()), payload])
            }
            if rowsPerTransaction > 1 { try writer.execute("COMMIT") }
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
        var usage: [ProcessUsage] = []
        for (index, node) in nodes.enumerated() {
            usage.append(ProcessUsage(pid: node.processIdentifier, name: "node\(index + 1) harmonylite")!)
            for (name, pid) in children(of: node.processIdentifier) {
                if let entry = ProcessUsage(pid: pid, name: "node\(index + 1) \(name)") { usage.append(entry) }
            }
        }
        return Result(label: label, rows: written, writeRate: Double(written) / writeSeconds, replicatedRate: Double(written) / allVisible,
                      lag: watcher.histogram, transactionTimes: transactionTimes, usage: usage)
    }
}

/// Polls node 2's arrivals every millisecond for rows it has not seen; for each, records now minus its
/// commit time.
final class Watcher: @unchecked Sendable {
    private let path: String
    private let state = Mutex<(seen: Int, lastVisible: Double, stopped: Bool)>((0, 0, false))
    private let lagHistogram = Mutex(Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three))

    init(path: String) { self.path = path }

    var seen: Int { state.withLock { $0.seen } }
    var lastVisible: Double { state.withLock { $0.lastVisible } }
    var histogram: Histogram<UInt64> { lagHistogram.withLock { $0 } }
    func stop() { state.withLock { $0.stopped = true } }

    func run() {
        guard let database = try? SQLiteDatabase(existingPath: path), let query = try? database.prepare("SELECT rowid, t_ns FROM arrivals WHERE rowid > ? ORDER BY rowid") else { return }
        var highest: Int64 = 0
        while !state.withLock({ $0.stopped }) {
            let rows = (try? query.all([.integer(highest)])) ?? []
            let visibleAt = wallNanoseconds()
            let visibleMonotonic = now()
            if !rows.isEmpty {
                lagHistogram.withLock { histogram in
                    for row in rows {
                        if case .integer(let committed) = row[1] { _ = histogram.record(UInt64(max(0, visibleAt - committed)) / 1000) }
                    }
                }
                if case .integer(let last) = rows.last![0] { highest = last }
                let count = rows.count
                state.withLock { $0.seen += count; $0.lastVisible = visibleMonotonic }
            }
            usleep(1000)
        }
    }
}
