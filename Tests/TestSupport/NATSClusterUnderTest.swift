import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An external NATS cluster for fault tests: `size` real nats-servers on loopback (free client, route and
/// monitoring ports), JetStream on, each with its own store directory and log. A server is killed with
/// SIGKILL and restarted with the same ports and store, always by PID. Who leads what is read from each
/// server's monitoring port: `/jsz` (stream and consumer leaders, stream state), `/connz` (which server a
/// client is connected to), `/healthz` (JetStream current on that server).
///
/// Servers are named `<name>-1` … `<name>-<size>`; indices are 0-based.
public final class NATSClusterUnderTest {
    public struct Server: Sendable {
        public var name: String
        public var clientPort: Int
        public var routePort: Int
        public var monitorPort: Int
        public var storeDirectory: String
        public var log: String
        public var url: String { "nats://127.0.0.1:\(clientPort)" }
    }

    public let servers: [Server]
    private let executable: String
    private var processes: [Process?]

    /// The servers' client URLs, for `[nats] urls`.
    public var urls: [String] { servers.map(\.url) }

    /// Starts every server and waits until JetStream has a meta leader everywhere.
    public init(size: Int = 3, directory: String, name: String = "nats", executable: String = "/usr/sbin/nats-server") throws {
        self.executable = executable
        servers = try (1...size).map { number in
            Server(
                name: "\(name)-\(number)", clientPort: try freePort(), routePort: try freePort(), monitorPort: try freePort(),
                storeDirectory: "\(directory)/\(name)-\(number)", log: "\(directory)/\(name)-\(number).log")
        }
        processes = Array(repeating: nil, count: size)
        for index in servers.indices { try start(index) }
        guard waitUntilHealthy(timeout: 60) else { throw TestFailure("the NATS cluster did not become healthy within 60 s:\n\(logTails())") }
    }

    deinit {
        for index in servers.indices { kill(index) }
    }

    // MARK: processes

    /// Starts server `index` (again), with the same ports and store; its log is appended to.
    public func start(_ index: Int) throws {
        guard processes[index]?.isRunning != true else { return }
        let server = servers[index]
        try FileManager.default.createDirectory(atPath: server.storeDirectory, withIntermediateDirectories: true)
        let routes = servers.map { "nats://127.0.0.1:\($0.routePort)" }.joined(separator: ",")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "-a", "127.0.0.1", "-p", "\(server.clientPort)", "-m", "\(server.monitorPort)", "-js", "-sd", server.storeDirectory,
            "--name", server.name, "--cluster_name", "test-cluster", "--cluster", "nats://127.0.0.1:\(server.routePort)",
            "--routes", routes,
        ]
        if !FileManager.default.fileExists(atPath: server.log) { _ = FileManager.default.createFile(atPath: server.log, contents: nil) }
        let log = FileHandle(forWritingAtPath: server.log)
        log?.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        processes[index] = process
        guard eventually(timeout: 20, interval: 0.1, { get(index, "/varz") != nil }) else {
            throw TestFailure("nats-server \(server.name) did not answer on its monitoring port:\n\(logTails())")
        }
    }

    /// SIGKILL to server `index`, by PID; returns once it is gone.
    public func kill(_ index: Int) {
        guard let process = processes[index] else { return }
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        processes[index] = nil
    }

    /// SIGKILL, then start again with the same store.
    public func restart(_ index: Int) throws {
        kill(index)
        try start(index)
    }

    public func pid(_ index: Int) -> Int32? { processes[index].flatMap { $0.isRunning ? $0.processIdentifier : nil } }

    public func isRunning(_ index: Int) -> Bool { pid(index) != nil }

    public var runningIndices: [Int] { servers.indices.filter(isRunning) }

    /// The index of the server named `name` (as leaders are reported).
    public func index(of name: String) -> Int? { servers.firstIndex { $0.name == name } }

    // MARK: monitoring

    /// Whether every running server says it is healthy (`/healthz`: JetStream enabled, meta leader known,
    /// its streams and consumers current) within `timeout` seconds.
    @discardableResult
    public func waitUntilHealthy(timeout: Double = 60) -> Bool {
        eventually(timeout: timeout, interval: 0.2) {
            runningIndices.allSatisfy { index in
                (json(index, "/healthz")?["status"] as? String) == "ok" && (json(index, "/jsz")?["meta_cluster"] as? [String: Any])?["leader"] as? String != nil
            }
        }
    }

    /// The stream's leader as the running servers report it (the first one that names one).
    public func streamLeader(_ stream: String) -> String? {
        for index in runningIndices {
            if let leader = (streamDetail(stream, on: index)?["cluster"] as? [String: Any])?["leader"] as? String, !leader.isEmpty { return leader }
        }
        return nil
    }

    /// The leader of `consumer` on `stream`, as the running servers report it.
    public func consumerLeader(stream: String, consumer: String) -> String? {
        consumerLeader(stream: stream, where: { $0 == consumer })
    }

    /// The leader of the first consumer on `stream` whose name satisfies `named` (a broker names each
    /// consumer it creates afresh: `<node>-<shard>-<token>`), as the running servers report it.
    public func consumerLeader(stream: String, where named: (String) -> Bool) -> String? {
        for index in runningIndices {
            let consumers = streamDetail(stream, on: index)?["consumer_detail"] as? [[String: Any]] ?? []
            if let detail = consumers.first(where: { ($0["name"] as? String).map(named) == true }),
                let leader = (detail["cluster"] as? [String: Any])?["leader"] as? String, !leader.isEmpty
            {
                return leader
            }
        }
        return nil
    }

    /// The names of the consumers on `stream`, as the first running server that knows the stream reports them.
    public func consumerNames(stream: String) -> [String] {
        for index in runningIndices {
            if let consumers = streamDetail(stream, on: index)?["consumer_detail"] as? [[String: Any]] { return consumers.compactMap { $0["name"] as? String } }
        }
        return []
    }

    /// What the stream holds (first and last sequence, messages) as its leader reports it.
    public func streamState(_ stream: String) -> (first: UInt64, last: UInt64, messages: UInt64)? {
        let leader = streamLeader(stream).flatMap(index(of:))
        for index in (leader.map { [$0] } ?? []) + runningIndices {
            if let state = streamDetail(stream, on: index)?["state"] as? [String: Any],
                let first = (state["first_seq"] as? NSNumber)?.uint64Value, let last = (state["last_seq"] as? NSNumber)?.uint64Value
            {
                return (first, last, (state["messages"] as? NSNumber)?.uint64Value ?? 0)
            }
        }
        return nil
    }

    /// The server a client (by the name it connected with) is connected to now.
    public func serverOfClient(named client: String) -> Int? {
        runningIndices.first { index in
            let connections = json(index, "/connz?limit=1024")?["connections"] as? [[String: Any]] ?? []
            return connections.contains { $0["name"] as? String == client }
        }
    }

    /// The last lines of every server's log, for failure messages.
    public func logTails(lines: Int = 15) -> String {
        servers.map { server in
            let text = (try? String(contentsOfFile: server.log, encoding: .utf8)) ?? ""
            return "\(server.name):\n" + text.split(separator: "\n").suffix(lines).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    private func streamDetail(_ stream: String, on index: Int) -> [String: Any]? {
        let accounts = json(index, "/jsz?streams=true&consumers=true")?["account_details"] as? [[String: Any]] ?? []
        for account in accounts {
            let streams = account["stream_detail"] as? [[String: Any]] ?? []
            if let detail = streams.first(where: { $0["name"] as? String == stream }) { return detail }
        }
        return nil
    }

    private func json(_ index: Int, _ path: String) -> [String: Any]? {
        guard let body = get(index, path) else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
    }

    /// One HTTP/1.0 GET on server `index`'s monitoring port; the body, or nil on any failure.
    private func get(_ index: Int, _ path: String) -> String? {
        guard isRunning(index) else { return nil }
        return httpGet(port: servers[index].monitorPort, path: path)
    }
}

/// A plain HTTP/1.0 GET on 127.0.0.1:`port` with a 2 s timeout each way: the body of a 200 answer, else nil.
public func httpGet(port: Int, path: String) -> String? {
    var response: [UInt8] = []
    let answered = withLoopbackSocket(port: port) { fd, address, length in
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, address, length) == 0 else { return false }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { return false }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while response.count < 64 << 20 {
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { return n == 0 }
            response += buffer[0..<n]
        }
        return false
    }
    guard answered else { return nil }
    let text = String(decoding: response, as: UTF8.self)
    guard text.hasPrefix("HTTP/1.") && text.split(separator: " ", maxSplits: 2).dropFirst().first == "200",
        let separator = text.range(of: "\r\n\r\n")
    else { return nil }
    return String(text[separator.upperBound...])
}
