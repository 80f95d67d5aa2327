import CPosix
import HarmonyConfig
import IPC
import Logging
import Logs
import Signals

#if canImport(Glibc)
import SystemCalls
import Glibc
#endif

/// What every worker process does the same way: connect to the supervisor's control socket, shake hands,
/// receive the resolved configuration, report ready, heartbeat, and stop when told to (by the supervisor's
/// `stop`, by SIGTERM, or because the supervisor is gone).
///
/// Used from the worker's main thread only.
public final class WorkerRuntime {
    public let role: WorkerRole
    public let configuration: Configuration
    public let logger: Logger
    private let connection: FrameConnection
    private let signals: SignalDescriptor
    private let heartbeatInterval: Int32
    private let controlSocketPath: String
    /// When heartbeats are due: kept here (not in `run`) so a wait for the database sends them too.
    private var schedule: LoopSchedule
    /// The handler's counters as the last heartbeat carried them (a heartbeat sent during a database wait
    /// repeats them: the handler's connection is busy waiting and must not be used).
    private var lastCounters: [ControlMessage.Counter] = []
    /// The supervisor asked for a heartbeat now (`reportNow`, for `-status`): sent at the loop's next turn.
    private var reportRequested = false
    private var databaseWait = DatabaseWait()
    /// A stop that arrived while the worker waited for the database: `run` returns it.
    private var pendingStop: StopReason?
    /// When the worker began its last work before stopping (`drain`): a wait for the database then lasts
    /// `drainWaitSeconds` at most, so a lock held for an hour never keeps a stop waiting.
    private var stoppingSince: Double?
    private static let drainWaitSeconds = 3.0

    /// Connects and shakes hands; on any failure prints why and exits the process with status 1 (a worker
    /// cannot do anything without its supervisor).
    public static func start(role: WorkerRole) -> WorkerRuntime {
        do {
            return try WorkerRuntime(role: role)
        } catch {
            let message = "\(role.executableName): \(error)\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
            exit(1)
        }
    }

    private init(role: WorkerRole) throws {
        self.role = role
        // Before any other thread exists, so libnats' and SQLite's threads inherit the blocked mask.
        signals = SignalDescriptor(signals: [SIGTERM, SIGINT, SIGHUP])
        SignalDescriptor.ignoreBrokenPipes()
        // Die with the supervisor even when it was killed with SIGKILL (the spawner sets this too; a worker
        // started by hand for debugging gets it here).
        _ = hl_set_parent_death_signal(SIGKILL)
        guard let path = getenv(ControlChannel.environmentVariable).flatMap({ String(validatingCString: $0) }) else {
            throw WorkerError(.notStartedBySupervisor, "\(ControlChannel.environmentVariable) is not set: workers are started by the harmonylite supervisor")
        }
        controlSocketPath = path
        connection = FrameConnection(fd: try UnixSocket.connect(path: path))
        try connection.send(ControlMessage.hello(.init(worker: role.rawValue, pid: getpid())).frame)
        guard let frame = try connection.receive(timeoutMilliseconds: 10_000) else {
            throw WorkerError(.handshake, "the supervisor did not answer the handshake within 10 s")
        }
        switch try ControlMessage(frame: frame) {
        case .welcome(let welcome):
            guard welcome.protocolVersion == ControlMessage.protocolVersion else {
                throw WorkerError(.handshake, "supervisor speaks control protocol \(welcome.protocolVersion), this worker \(ControlMessage.protocolVersion)")
            }
            configuration = try Configuration(fromWorkerHandshake: welcome.configuration)
            heartbeatInterval = Int32(welcome.heartbeatIntervalMilliseconds)
        case .rejected(let reason):
            throw WorkerError(.handshake, "the supervisor rejected this worker: \(reason)")
        default:
            throw WorkerError(.handshake, "unexpected first message from the supervisor")
        }
        LineLogHandler.bootstrap(
            process: role.rawValue,
            format: configuration.logging.format,
            verbose: configuration.logging.verbose,
            nodeID: configuration.nodeID
        )
        SecretRedaction.register(configuration.secretValues)
        logger = Logger(label: role.rawValue)
        schedule = LoopSchedule(now: monotonicSeconds(), heartbeatInterval: Double(heartbeatInterval) / 1000)
    }

    /// Tells the supervisor this worker can do its job.
    public func reportReady(_ detail: String) throws {
        try connection.send(ControlMessage.ready(detail: detail).frame)
    }

    /// A line a person should see in `systemctl status` and the supervisor's log.
    public func reportStatus(_ text: String) throws {
        try connection.send(ControlMessage.status(text).frame)
    }

    public enum StopReason: Equatable, CustomStringConvertible {
        case requested(String)
        case signal(Int32)
        case supervisorGone

        /// As a log line says it: `the supervisor asked (supervisor request)`, `signal 15`.
        public var description: String {
            switch self {
            case .requested(let reason): "the supervisor asked (\(reason))"
            case .signal(let number): "signal \(number)"
            case .supervisorGone: "the supervisor is gone"
            }
        }
    }

    /// Runs the worker's loop until it must stop: watches the control socket, signals and the handler's
    /// descriptors, calls the handler when they are readable, when its deadline has passed and at every
    /// heartbeat, and sends a heartbeat with its counters at the interval the supervisor asked for. The
    /// clock is read here only; the handler gets `now`. A handler that blocks stops the heartbeats and is
    /// replaced by the supervisor, which is the point; waiting for a database lock is not blocking in that
    /// sense (`whileWaitingForDatabase` keeps the heartbeats going).
    public func run(_ handler: some WorkerLoopHandler) throws -> StopReason {
        while true {
            if let stop = pendingStop { return stop }
            // Read once, before the wait: see `LoopSchedule`.
            let deadline = handler.nextDeadline
            let timeout = schedule.waitMicroseconds(now: monotonicSeconds(), deadline: deadline)
            var descriptors = [Poll.watch(connection.fd), Poll.watch(signals.fd)] + handler.descriptors
            do {
                _ = try Poll.wait(&descriptors, timeoutMicroseconds: timeout)
            } catch {
                throw WorkerError(.loop, "the worker's loop cannot wait for events", cause: error)
            }
            if descriptors[1].revents != 0 {
                for signal in signals.drain() where signal != SIGHUP { return .signal(signal) }
            }
            if descriptors[0].revents != 0, let reason = try readControlMessages() { return reason }
            let ready = descriptors.dropFirst(2).filter { $0.revents != 0 }
            let now = monotonicSeconds()
            if !ready.isEmpty { try handler.handle(readable: Array(ready), now: now) }
            databaseWaitOver()
            let due = schedule.due(now: now, deadline: deadline)
            if due.tick { try handler.tick(now: now) }
            databaseWaitOver()
            if due.heartbeat || reportRequested {
                if reportRequested { handler.refreshReadings() }
                reportRequested = false
                lastCounters = handler.counters
                databaseWaitOver()
                try sendHeartbeat(now: monotonicSeconds())
                let observations = handler.takeObservations()
                if !observations.isEmpty { try connection.send(ControlMessage.observations(observations).frame) }
            }
        }
    }

    /// For `SQLiteDatabase.waitWhenBusy` on every connection of the worker's loop: called between tries while
    /// it waits for a lock another connection holds (an application transaction). Keeps the heartbeats going
    /// (with the counters of the last one and how long it waits), logs the wait every few seconds, and
    /// watches for a stop: false (give up the wait, SQLITE_BUSY) once one arrived, which `run` then returns.
    /// Never uses a database connection.
    public func whileWaitingForDatabase() -> Bool {
        let now = monotonicSeconds()
        if let stoppingSince { return now - stoppingSince < Self.drainWaitSeconds }
        if pendingStop == nil { pendingStop = stopArrived() }
        guard pendingStop == nil else { return false }
        if case .waiting(let seconds) = databaseWait.tried(now: now) {
            logger.warning(
                "waiting for the database write lock another connection holds (an application transaction?); replication resumes once it is released",
                metadata: ["waited_s": "\(seconds)"])
        }
        if schedule.due(now: now, deadline: nil).heartbeat {
            do {
                try sendHeartbeat(now: now)
            } catch {
                // The supervisor is gone: stop waiting, `run` stops.
                pendingStop = .supervisorGone
                return false
            }
        }
        return true
    }

    /// The loop is over; the handler's `drain` follows: waits for the database are short from now on.
    public func beginStopping() {
        stoppingSince = monotonicSeconds()
    }

    /// The handler returned to the loop: a wait for the database is over.
    private func databaseWaitOver() {
        if case .resumed(let seconds) = databaseWait.over(now: monotonicSeconds()) {
            logger.info("got the database write lock; going on", metadata: ["waited_s": "\(seconds)"])
        }
    }

    private func sendHeartbeat(now: Double) throws(IPCError) {
        let counters = lastCounters + [.init(.databaseWait, databaseWait.waitedMilliseconds(now: now))]
        try connection.send(ControlMessage.heartbeat(counters: counters).frame)
    }

    /// A stop request or signal that arrived, read without waiting (during a database wait).
    private func stopArrived() -> StopReason? {
        var descriptors = [Poll.watch(connection.fd), Poll.watch(signals.fd)]
        guard let ready = try? Poll.wait(&descriptors, timeoutMilliseconds: 0), ready > 0 else { return nil }
        if descriptors[1].revents != 0 {
            for signal in signals.drain() where signal != SIGHUP { return .signal(signal) }
        }
        if descriptors[0].revents != 0 {
            do {
                return try readControlMessages()
            } catch {
                return .supervisorGone
            }
        }
        return nil
    }

    /// `run` for a worker with nothing to watch: `tick` returns the heartbeat's counters.
    public func run(tick: @escaping () throws -> [ControlMessage.Counter]) throws -> StopReason {
        try run(TickOnly(body: tick))
    }

    /// The node's run directory (where the broker's data socket lives).
    public var runDirectory: String { FilePaths.directory(of: controlSocketPath) }

    private func readControlMessages() throws -> StopReason? {
        while true {
            let frame: Frame?
            do {
                frame = try connection.receive(timeoutMilliseconds: 0)
            } catch {
                if error.kind == .connectionClosed { return .supervisorGone }
                throw error
            }
            guard let frame else { return nil }
            switch try ControlMessage(frame: frame) {
            case .stop(let reason): return .requested(reason)
            case .reportNow: reportRequested = true
            default: continue
            }
        }
    }
}

/// Why a worker cannot run: what went wrong (`kind`), in words, and the error underneath, if any.
public struct WorkerError: Error, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// Started by hand: no control socket to talk to.
        case notStartedBySupervisor
        /// The supervisor did not answer, answered another protocol, or refused this worker.
        case handshake
        /// The loop's wait for events failed.
        case loop
    }

    public var kind: Kind
    public var message: String
    public var cause: (any Error)?

    public init(_ kind: Kind, _ message: String, cause: (any Error)? = nil) {
        self.kind = kind
        self.message = message
        self.cause = cause
    }

    public var description: String { cause.map { "\(message): \($0)" } ?? message }
}

/// A worker's part of the loop `WorkerRuntime.run` drives. Called on the main thread only. Deadlines are
/// values kept in the handler's state; `now` comes from the loop.
public protocol WorkerLoopHandler: AnyObject {
    /// Descriptors to watch besides the control socket (asked before every wait).
    var descriptors: [pollfd] { get }
    /// When the handler wants `tick` next even without events (monotonic seconds), if ever. Asked once
    /// before every wait.
    var nextDeadline: Double? { get }
    /// Some of `descriptors` have events.
    func handle(readable: [pollfd], now: Double) throws
    /// Timed work: at every heartbeat and once `nextDeadline` has passed.
    func tick(now: Double) throws
    /// What the next heartbeat reports (exported on /metrics).
    var counters: [ControlMessage.Counter] { get }
    /// Reads what `counters` reports from elsewhere now, for a heartbeat the supervisor asked for
    /// (`-status`): the broker reads the stream heads. Bounded; the default does nothing.
    func refreshReadings()
    /// Histogram samples since the last heartbeat (sent after it; exported on /metrics).
    func takeObservations() -> [Observations]
    /// The last work before a normal stop (store what is kept in memory, give up leases).
    func drain() throws
    /// `drain` knowing why the worker stops (the supervisor's `sleep_timeout` asks for a last snapshot).
    func drain(reason: WorkerRuntime.StopReason) throws
}

extension WorkerLoopHandler {
    public func drain() throws {}
    public func drain(reason: WorkerRuntime.StopReason) throws { try drain() }
    public func takeObservations() -> [Observations] { [] }
    public func refreshReadings() {}
}

private final class TickOnly: WorkerLoopHandler {
    let body: () throws -> [ControlMessage.Counter]
    var counters: [ControlMessage.Counter] = []
    init(body: @escaping () throws -> [ControlMessage.Counter]) { self.body = body }
    var descriptors: [pollfd] { [] }
    var nextDeadline: Double? { nil }
    func handle(readable: [pollfd], now: Double) throws {}
    func tick(now: Double) throws { counters = try body() }
}
