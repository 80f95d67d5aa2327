import Foundation
import TestSupport

/// Where a node lives: its address, how its supervisor is launched (in a network namespace, say) and the
/// directory of its database (a small filesystem, say). The default is loopback, directly, next to the configs.
struct NodePlacement {
    var host = "127.0.0.1"
    var launcher: [String] = []
    var databaseDirectory: String?
}

/// Three (or more) nodes on loopback sharing one directory, their embedded nats-servers clustered; the
/// application is the sqlite3 shell with `PRAGMA trusted_schema=OFF`.
final class TestCluster {
    let directory: TemporaryDirectory
    private(set) var nodes: [NodeUnderTest?]
    let clientPorts: [Int]
    let routePorts: [Int]
    let schema: String
    let extraTOML: [String]
    let placements: [NodePlacement]

    /// Lines added to every node's `[nats]` table (e.g. an operator `user_name`/`user_password`).
    let natsTOML: String
    /// Which nodes route to each other: one group each (several: separate NATS clusters, the regions).
    let routeGroups: [[Int]]
    /// Per node: lines of its `[nats]` table and command-line arguments beyond the routes'.
    let nodeNATSTOML: [String]
    let nodeArguments: [[String]]

    /// `late`: nodes added later (`start`), with an empty database (no tables) made now.
    init(
        size: Int = 3, schema: String, extraTOML: [String]? = nil, placements: [NodePlacement]? = nil, natsTOML: String = "",
        routeGroups: [[Int]]? = nil, nodeNATSTOML: [String]? = nil, nodeArguments: [[String]]? = nil, late: Set<Int> = []
    ) throws {
        directory = try TemporaryDirectory()
        self.natsTOML = natsTOML
        self.routeGroups = routeGroups ?? [Array(0..<size)]
        self.nodeNATSTOML = nodeNATSTOML ?? Array(repeating: "", count: size)
        self.nodeArguments = nodeArguments ?? Array(repeating: [], count: size)
        self.placements = placements ?? Array(repeating: NodePlacement(), count: size)
        clientPorts = try (0..<size).map { _ in try freePort() }
        routePorts = try (0..<size).map { _ in try freePort() }
        self.schema = schema
        self.extraTOML = extraTOML ?? Array(repeating: "", count: size)
        nodes = Array(repeating: nil, count: size)
        for index in 0..<size { try makeDatabase(path(index), "PRAGMA journal_mode=WAL;" + (late.contains(index) ? "" : schema)) }
        for index in 0..<size where !late.contains(index) { try start(index) }
        for index in 0..<size where !late.contains(index) { try nodes[index]!.waitUntilReady(timeout: 60) }
    }

    deinit { nodes.forEach { $0?.terminate() } }

    func path(_ index: Int) -> String { (placements[index].databaseDirectory ?? directory.path) + "/node\(index + 1).db" }

    func node(_ index: Int) -> NodeUnderTest { nodes[index]! }

    /// `createDatabase: false`: a missing database stays missing (the node's own start creates it).
    func start(_ index: Int, extra: String? = nil, createDatabase: Bool = true, arguments: [String] = []) throws {
        let group = routeGroups.first { $0.contains(index) } ?? [index]
        let peers = group.filter { $0 != index }.map { "nats://\(placements[$0].host):\(routePorts[$0])/" }.joined(separator: ",")
        let host = placements[index].host
        // One cluster secret for all: by default each node's sits beside its database, and these may live apart.
        let secret = placements[index].databaseDirectory == nil ? "" : "cluster_secret_file = \"\(directory.path)/cluster.secret\"\n"
        nodes[index] = try NodeUnderTest(
            nodeID: index + 1,
            toml: (extra ?? extraTOML[index]) + "\n[nats]\nbind_address = \"\(host):\(clientPorts[index])\"\n" + secret + natsTOML + nodeNATSTOML[index],
            arguments: ["-cluster-addr", "\(host):\(routePorts[index])", "-cluster-peers", peers] + nodeArguments[index] + arguments,
            directory: directory,
            database: path(index),
            launcher: placements[index].launcher,
            createDatabase: createDatabase
        )
    }

    func stop(_ index: Int) {
        nodes[index]?.terminate()
        nodes[index] = nil
    }

    /// Runs SQL as the application on node `index`.
    @discardableResult
    func sql(_ index: Int, _ statements: String) throws -> String {
        let result = try runCommand("/usr/bin/sqlite3", ["-cmd", ".timeout 5000", path(index), "PRAGMA trusted_schema=OFF;" + statements])
        guard result.status == 0 else { throw TestFailure("sqlite3 on node \(index + 1): \(result.output)") }
        return result.output
    }

    /// Waits until `query` gives `expected` on every listed node.
    func converge(_ query: String, to expected: String, on indices: [Int]? = nil, timeout: Double = 20) throws -> Bool {
        let targets = indices ?? Array(nodes.indices.filter { nodes[$0] != nil })
        return try eventually(timeout: timeout, interval: 0.1) { try targets.allSatisfy { try sql($0, query) == expected } }
    }

    /// Waits until `query` gives the same, non-empty answer on every listed node; returns it.
    func agree(_ query: String, on indices: [Int]? = nil, timeout: Double = 30) throws -> String? {
        let targets = indices ?? Array(nodes.indices.filter { nodes[$0] != nil })
        var answer: String?
        let agreed = try eventually(timeout: timeout, interval: 0.2) {
            let answers = try targets.map { try sql($0, query) }
            answer = answers.first
            return Set(answers).count == 1
        }
        return agreed ? answer : nil
    }

    func logs() -> String { nodes.compactMap { $0?.log }.joined(separator: "\n=====\n") }

    /// Every node's warnings and errors from our processes (not nats-server's own chatter), for failure messages.
    func problems(limit: Int = 40) -> String {
        nodes.indices.map { index in
            let lines = (nodes[index]?.log ?? "").split(separator: "\n").filter { line in
                (line.contains("WRN") || line.contains("ERR") || line.contains("warning") || line.contains("error")) && !line.contains("route")
            }
            return "node \(index + 1):\n" + lines.suffix(limit).joined(separator: "\n")
        }.joined(separator: "\n")
    }
}

extension TestCluster {
    /// The PID of `worker` of node `index`, waiting up to `timeout` s for one to run (see `NodeUnderTest.pid(of:)`).
    func pid(of worker: Worker, node index: Int, timeout: Double = 10) throws -> Int32 {
        guard let node = nodes[index] else { throw TestFailure("node \(index + 1) is stopped: it has no \(worker.rawValue)") }
        guard let pid = node.pid(of: worker, timeout: timeout) else {
            throw TestFailure("node \(index + 1) has no \(worker.rawValue) running; its children: \(node.children())")
        }
        return pid
    }

    /// Holds `worker` of node `index` back with SIGSTOP until the pause is resumed (SIGCONT). Keep it below the
    /// worker's `heartbeat_timeout`, or the supervisor kills it as hung and starts another.
    func pause(_ worker: Worker, node index: Int) throws -> PausedWorker {
        try PausedWorker(pid: pid(of: worker, node: index), worker: worker, node: index)
    }
}

/// A worker process stopped with SIGSTOP; `resume()` sends SIGCONT, once — at the latest when the pause is
/// released, so a test that throws never leaves a process stopped.
final class PausedWorker {
    let pid: Int32
    let worker: Worker
    let node: Int
    let since = Date()
    private var resumed = false

    init(pid: Int32, worker: Worker, node: Int) throws {
        guard kill(pid, SIGSTOP) == 0 else { throw TestFailure("SIGSTOP to node \(node + 1)'s \(worker.rawValue) (\(pid)) failed: errno \(errno)") }
        self.pid = pid
        self.worker = worker
        self.node = node
    }

    deinit { resume() }

    /// SIGCONT, after waiting until the worker has been stopped for `atLeast` seconds.
    func resume(atLeast: Double = 0) {
        guard !resumed else { return }
        let left = atLeast - Date().timeIntervalSince(since)
        if left > 0 { Thread.sleep(forTimeInterval: left) }
        kill(pid, SIGCONT)
        resumed = true
    }
}
