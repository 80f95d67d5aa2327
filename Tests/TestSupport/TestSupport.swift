import Foundation
import Synchronization

/// A directory under /tmp removed when the value goes away. Short paths keep socket paths under 108 bytes.
public final class TemporaryDirectory {
    public let path: String

    public init() throws {
        var template = Array("/tmp/hlt-XXXXXX".utf8CString)
        guard let result = mkdtemp(&template) else { throw POSIXError(.EIO) }
        path = String(cString: result)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    public func write(_ name: String, _ contents: String) -> String {
        let file = path + "/" + name
        _ = FileManager.default.createFile(atPath: file, contents: Data(contents.utf8))
        return file
    }
}

/// Runs a command to completion and returns its status and output (stdout and stderr together).
@discardableResult
public func runCommand(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Creates a SQLite database with the `sqlite3` shell, the reference client.
public func makeDatabase(_ path: String, _ sql: String = "CREATE TABLE books(id INTEGER PRIMARY KEY, title TEXT NOT NULL);") throws {
    let result = try runCommand("/usr/bin/sqlite3", [path, sql])
    guard result.status == 0 else { throw TestFailure("sqlite3 failed: \(result.output)") }
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Polls `condition` until it holds or `timeout` seconds pass.
public func eventually(timeout: Double, interval: Double = 0.05, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: interval)
    }
    return try condition()
}

/// A server program a test starts (moto, nginx, sshd), its output in `log`; stopped by PID.
public final class ServerUnderTest {
    public let log: String
    private let process = Process()

    public init(_ executable: String, _ arguments: [String], log: String) throws {
        self.log = log
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    /// Whether something accepts connections on 127.0.0.1:`port` within `timeout` seconds.
    public func waitForTCP(port: Int, timeout: Double = 20) -> Bool {
        eventually(timeout: timeout, interval: 0.1) {
            withLoopbackSocket(port: port) { fd, address, length in connect(fd, address, length) == 0 }
        }
    }

    public var isRunning: Bool { process.isRunning }

    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        if !eventually(timeout: 10, { !process.isRunning }) { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// Whether a process exists (and is not a zombie we would still have to reap).
public func processExists(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
    guard let close = stat.lastIndex(of: ")") else { return false }
    return stat[stat.index(close, offsetBy: 2)] != "Z"
}

/// A TCP port on 127.0.0.1 that was free a moment ago, below the kernel's ephemeral range: a server the
/// test restarts must get its port back, and a port from the ephemeral range can meanwhile be taken as the
/// local end of any outgoing connection (a peer reconnecting to it, say), which left a restarted
/// nats-server unable to listen. Never the same port twice in one test process.
public func freePort() throws -> Int {
    let ephemeralStart =
        (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
        .flatMap { $0.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { Int($0) } } ?? 32768
    let range = 10_000..<max(10_001, ephemeralStart)
    for _ in 0..<1000 {
        let port = Int.random(in: range)
        guard handedOutPorts.withLock({ $0.insert(port).inserted }) else { continue }
        if portIsFree(port) { return port }
    }
    throw TestFailure("no free port below \(ephemeralStart)")
}

private let handedOutPorts = Mutex<Set<Int>>([])

private func portIsFree(_ port: Int) -> Bool {
    withLoopbackSocket(port: port) { fd, address, length in bind(fd, address, length) == 0 }
}

/// A new TCP socket (closed afterwards) and the address 127.0.0.1:`port`, for one connect or bind.
func withLoopbackSocket(port: Int, _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Bool) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}

/// A seeded random number generator: a failing randomized test prints its seed and replays with it.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
