import Foundation
import HarmonyConfig
import Synchronization
import TestSupport

/// The built executables: `.build/debug` of this package unless HARMONYLITE_BUILD_DIR says otherwise.
enum Binaries {
    static var directory: String {
        if let explicit = ProcessInfo.processInfo.environment["HARMONYLITE_BUILD_DIR"] { return explicit }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug").path
    }

    static var supervisor: String { directory + "/harmonylite" }
}

/// systemd's side of `Type=notify`, faked: a datagram socket that records every notification with the
/// time it arrived.
final class NotifyListener: Sendable {
    struct Message: Sendable {
        let time: Date
        let text: String
    }

    let path: String
    private let fd: Int32
    private let messages = Mutex<[Message]>([])
    private let stopped = Atomic<Bool>(false)

    init(path: String) throws {
        self.path = path
        unlink(path)  // left by an earlier run of the same node
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw TestFailure("cannot bind notify socket \(path)") }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let thread = Thread { [self] in self.receive() }
        thread.start()
    }

    deinit { close(fd) }

    func stop() { stopped.store(true, ordering: .relaxed) }

    private func receive() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !stopped.load(ordering: .relaxed) {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 {
                let text = String(decoding: buffer[0..<n], as: UTF8.self)
                messages.withLock { $0.append(Message(time: Date(), text: text)) }
            }
        }
    }

    var all: [Message] { messages.withLock { $0 } }

    /// Notifications that contain `assignment` as one of their lines.
    func with(_ assignment: String) -> [Message] {
        all.filter { $0.text.split(separator: "\n").contains { $0 == assignment || $0.hasPrefix(assignment) } }
    }

    func waitFor(_ assignment: String, timeout: Double) -> Bool {
        eventually(timeout: timeout) { !with(assignment).isEmpty }
    }
}

/// A node's child processes, named as `NodeUnderTest.children()` names them (`harmonylite-<name>`, and
/// `nats` for the embedded nats-server).
typealias Worker = WorkerRole

/// One `harmonylite` supervisor started by a test, with its own directory, database, config and fake
/// systemd. Stopped by PID; never outlives the test.
final class NodeUnderTest {
    let directory: TemporaryDirectory
    let database: String
    let configPath: String
    let logPath: String
    let notify: NotifyListener
    private let process = Process()

    init(
        nodeID: Int = 1,
        toml: String = "",
        arguments: [String] = [],
        watchdogMicroseconds: Int? = nil,
        directory: TemporaryDirectory? = nil,
        logToJournal: Bool = false,
        environment extraEnvironment: [String: String] = [:],
        database: String? = nil,
        launcher: [String] = [],
        createDatabase: Bool = true
    ) throws {
        self.directory = try directory ?? TemporaryDirectory()
        self.database = database ?? self.directory.path + "/node\(nodeID).db"
        if createDatabase && !FileManager.default.fileExists(atPath: self.database) { try makeDatabase(self.database) }
        configPath = self.directory.write(
            "node\(nodeID).toml",
            "db_path = \"\(self.database)\"\nnode_id = \(nodeID)\nseq_map_path = \"\(self.directory.path)/node\(nodeID)-seq-map.cbor\"\n" + toml)
        logPath = self.directory.path + "/node\(nodeID).log"
        notify = try NotifyListener(path: self.directory.path + "/notify\(nodeID).sock")

        // A launcher (`nsenter --net=…`) runs the supervisor in another namespace; it execs, so the PID is the supervisor's.
        process.executableURL = URL(fileURLWithPath: launcher.first ?? Binaries.supervisor)
        process.arguments = launcher.dropFirst() + (launcher.isEmpty ? [] : [Binaries.supervisor]) + ["-config", configPath] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = notify.path
        environment.removeValue(forKey: "RUNTIME_DIRECTORY")
        if let watchdogMicroseconds {
            environment["WATCHDOG_USEC"] = String(watchdogMicroseconds)
        } else {
            environment.removeValue(forKey: "WATCHDOG_USEC")
        }
        environment.removeValue(forKey: "WATCHDOG_PID")
        environment.merge(extraEnvironment) { $1 }
        process.environment = environment
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = FileHandle(forWritingAtPath: logPath)
        if logToJournal {
            // What systemd sets when standard error is the journal: the stream's device and inode.
            var status = stat()
            stat(logPath, &status)
            environment["JOURNAL_STREAM"] = "\(status.st_dev):\(status.st_ino)"
            process.environment = environment
        }
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        notify.stop()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The supervisor's children by role: "nats", "broker", "snapshotter", "applier", "capturer". Every
    /// thread's list: a worker restarted from another thread of the supervisor is that thread's child.
    func children() -> [String: Int32] { Self.children(ofSupervisor: pid) }

    /// The children by role of the supervisor whose PID is `pid` (usable from any thread).
    static func children(ofSupervisor pid: Int32) -> [String: Int32] {
        var result: [String: Int32] = [:]
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        let list = tasks.map { (try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/children", encoding: .utf8)) ?? "" }.joined(separator: " ")
        for pidText in list.split(separator: " ") {
            guard let child = Int32(pidText), let argv0 = Self.argv0(of: child) else { continue }
            let name = argv0.hasPrefix("harmonylite-") ? String(argv0.dropFirst("harmonylite-".count)) : argv0 == "nats-server" ? "nats" : argv0
            result[name] = child
        }
        return result
    }

    /// The PID of `worker` among this supervisor's children, waiting up to `timeout` s for one (a worker the
    /// supervisor is restarting is briefly absent); nil if none appears.
    func pid(of worker: Worker, timeout: Double = 10) -> Int32? {
        var found: Int32?
        _ = eventually(timeout: timeout, interval: 0.05) {
            found = Self.pid(of: worker, supervisor: pid)
            return found != nil
        }
        return found
    }

    /// The PID of `worker` among the children of the supervisor whose PID is `supervisor`, now (from any thread).
    static func pid(of worker: Worker, supervisor: Int32) -> Int32? { children(ofSupervisor: supervisor)[worker.rawValue] }

    static func argv0(of pid: Int32) -> String? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty else { return nil }
        let first = data.split(separator: 0, omittingEmptySubsequences: false).first ?? Data()
        return String(decoding: first, as: UTF8.self).split(separator: "/").last.map(String.init)
    }

    func waitUntilReady(timeout: Double = 30) throws {
        guard notify.waitFor("READY=1", timeout: timeout) else {
            throw TestFailure("node did not report READY=1 within \(timeout) s; log:\n\(log)")
        }
    }

    /// SIGTERM, then waits for the exit; returns the exit status (or nil if it had to be killed).
    @discardableResult
    func terminate(timeout: Double = 30) -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        kill(pid, SIGTERM)
        if eventually(timeout: timeout, { !process.isRunning }) { return process.terminationStatus }
        kill(pid, SIGKILL)
        process.waitUntilExit()
        return nil
    }

    func waitForExit(timeout: Double) -> Int32? {
        eventually(timeout: timeout) { !process.isRunning } ? process.terminationStatus : nil
    }
}
