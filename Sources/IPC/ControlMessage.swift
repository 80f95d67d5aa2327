import BinaryCoding

/// Messages between a worker and the supervisor on the control socket.
///
/// A worker connects, sends `hello`; the supervisor answers `welcome` (with the resolved configuration, so
/// no worker parses TOML on its own) or `rejected`. Then the worker sends `ready` once it can do its job,
/// `heartbeat` at the interval the welcome gave, and `status` when something a person should see changes.
/// The supervisor sends `stop` to drain it. A worker also sends `observations` (histogram samples since its
/// last heartbeat) right after a heartbeat when it has any.
///
/// `harmonylite -status` connects to the same socket and sends `statusQuery` instead of `hello`; the
/// supervisor sends every worker `reportNow` (a heartbeat now, its readings refreshed first: the broker
/// reads the stream heads), and answers `statusReport` (JSON) once they have, or after a second at most,
/// then closes the connection.
public enum ControlMessage: Equatable, Sendable {
    case hello(Hello)
    case welcome(Welcome)
    case rejected(reason: String)
    case ready(detail: String)
    case heartbeat(counters: [Counter])
    case status(String)
    case stop(reason: String)
    case observations([Observations])
    case statusQuery
    case statusReport(json: String)
    case reportNow

    /// The stop reason the supervisor sends when `sleep_timeout` ends the node: the snapshot lease holder
    /// saves a snapshot before it stops.
    public static let sleepTimeoutReason = "sleep_timeout"

    /// The control protocol version. A worker and a supervisor of different versions refuse each other
    /// in the handshake instead of misreading frames.
    public static let protocolVersion: UInt16 = 1

    public struct Hello: Equatable, Sendable {
        public var protocolVersion: UInt16
        public var worker: String
        public var pid: Int32

        public init(protocolVersion: UInt16 = ControlMessage.protocolVersion, worker: String, pid: Int32) {
            self.protocolVersion = protocolVersion
            self.worker = worker
            self.pid = pid
        }
    }

    public struct Welcome: Equatable, Sendable {
        public var protocolVersion: UInt16
        public var heartbeatIntervalMilliseconds: UInt32
        /// The resolved configuration, encoded by `HarmonyConfig`.
        public var configuration: [UInt8]

        public init(
            protocolVersion: UInt16 = ControlMessage.protocolVersion,
            heartbeatIntervalMilliseconds: UInt32,
            configuration: [UInt8]
        ) {
            self.protocolVersion = protocolVersion
            self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
            self.configuration = configuration
        }
    }

    /// A named value a worker reports with every heartbeat (exported on /metrics).
    public struct Counter: Equatable, Sendable {
        public var name: String
        public var value: Int64

        /// Any name, as decoded from the wire; senders name a `WorkerCounter`.
        init(name: String, _ value: Int64) {
            self.name = name
            self.value = value
        }
    }

    /// How a worker's `status` says why it could not start, or why it stops on its own, just before it
    /// exits: the supervisor says it again with the exit, so the line the node stops on names the problem
    /// and the remedy.
    public static let cannotStartPrefix = "cannot start: "
    public static let stoppingPrefix = "stopping: "

    /// The most bytes of text (status, ready detail, reasons) one message carries. Text can quote outside
    /// bytes (a table name from another node's event): a 700 KB name made a status line larger than the
    /// supervisor's 1 MiB control frame, the connection closed, and the worker was restarted onto the same
    /// event until the node stopped. Longer text is cut on a character boundary, saying how much was cut.
    public static let maximumTextBytes = 4096

    public static func bounded(_ text: String) -> String {
        let utf8 = text.utf8
        guard utf8.count > maximumTextBytes else { return text }
        var end = utf8.index(utf8.startIndex, offsetBy: maximumTextBytes - 64)
        while end > utf8.startIndex, UTF8.isContinuation(utf8[end]) { end = utf8.index(before: end) }
        let kept = String(decoding: text.utf8[..<end], as: UTF8.self)
        return kept + "… (\(utf8.count - kept.utf8.count) more bytes cut)"
    }

    enum TypeByte: UInt8 {
        case hello = 0x01
        case welcome = 0x02
        case rejected = 0x03
        case ready = 0x10
        case heartbeat = 0x11
        case status = 0x12
        case stop = 0x13
        case observations = 0x14
        case statusQuery = 0x15
        case statusReport = 0x16
        case reportNow = 0x17
    }

    public var frame: Frame {
        var w = BinaryWriter()
        let type: TypeByte
        switch self {
        case .hello(let hello):
            type = .hello
            w.write(hello.protocolVersion)
            w.write(hello.worker)
            w.write(hello.pid)
        case .welcome(let welcome):
            type = .welcome
            w.write(welcome.protocolVersion)
            w.write(welcome.heartbeatIntervalMilliseconds)
            w.write(welcome.configuration)
        case .rejected(let reason):
            type = .rejected
            w.write(Self.bounded(reason))
        case .ready(let detail):
            type = .ready
            w.write(Self.bounded(detail))
        case .heartbeat(let counters):
            type = .heartbeat
            w.write(UInt16(counters.count))
            for counter in counters {
                w.write(counter.name)
                w.write(counter.value)
            }
        case .status(let text):
            type = .status
            w.write(Self.bounded(text))
        case .stop(let reason):
            type = .stop
            w.write(Self.bounded(reason))
        case .observations(let list):
            type = .observations
            w.write(UInt16(list.count))
            for series in list { series.write(to: &w) }
        case .statusQuery:
            type = .statusQuery
        case .statusReport(let json):
            type = .statusReport
            w.write(json)
        case .reportNow:
            type = .reportNow
        }
        return Frame(type: type.rawValue, body: w.bytes)
    }

    public init(frame: Frame) throws(IPCError) {
        guard let type = TypeByte(rawValue: frame.type) else { throw IPCError(.unknownMessageType(frame.type)) }
        var r = BinaryReader(frame.body)
        do {
            switch type {
            case .hello:
                self = .hello(Hello(protocolVersion: try r.readUInt16(), worker: try r.readString(), pid: try r.readInt32()))
            case .welcome:
                self = .welcome(
                    Welcome(
                        protocolVersion: try r.readUInt16(),
                        heartbeatIntervalMilliseconds: try r.readUInt32(),
                        configuration: try r.readBytes()
                    )
                )
            case .rejected: self = .rejected(reason: try r.readString())
            case .ready: self = .ready(detail: try r.readString())
            case .heartbeat:
                let count = Int(try r.readUInt16())
                var counters: [Counter] = []
                counters.reserveCapacity(min(count, 256))
                for _ in 0..<count { counters.append(Counter(name: try r.readString(), try r.readInt64())) }
                self = .heartbeat(counters: counters)
            case .status: self = .status(try r.readString())
            case .stop: self = .stop(reason: try r.readString())
            case .observations:
                let count = Int(try r.readUInt16())
                var list: [Observations] = []
                list.reserveCapacity(min(count, 64))
                for _ in 0..<count { list.append(try Observations(from: &r)) }
                self = .observations(list)
            case .statusQuery: self = .statusQuery
            case .statusReport: self = .statusReport(json: try r.readString())
            case .reportNow: self = .reportNow
            }
        } catch {
            throw IPCError(.malformedBody(messageType: frame.type, reason: "\(error)"))
        }
        guard r.remaining == 0 else {
            throw IPCError(.malformedBody(messageType: frame.type, reason: "\(r.remaining) trailing bytes"))
        }
    }
}
