import BinaryCoding

/// Messages on the broker's data socket: the capturer's publishes and their confirmations, the applier's
/// subscription, deliveries and applied positions. Every hot-path message carries a batch, not one row.
///
/// Flow control: the capturer keeps a bounded number of publishes unconfirmed; the broker delivers to the
/// applier only while it holds credit (`credit` grants more), so neither side buffers without bound.
public enum DataMessage: Equatable, Sendable {
    /// The layout of the data socket's messages, sent with the hello. 2: deliveries carry their message id.
    public static let protocolVersion: UInt8 = 2

    /// First message on a data connection: who is speaking.
    case hello(role: Role)
    /// Capturer → broker: one JetStream message to publish on `shard`, named by `messageID` (which names
    /// its changes; JetStream does not deduplicate it: see `NATSConnection.publishIDHeader`).
    case publish(Publish)
    /// Broker → capturer: JetStream stored (or had already stored) the publish `batchID`.
    case published(batchID: UInt64, stream: String, sequence: UInt64)
    /// Broker → capturer: the publish `batchID` was not acknowledged; it stays pending and is sent again.
    case publishFailed(batchID: UInt64, reason: String)
    /// Applier → broker: consume every shard from after these positions (stream name → last applied).
    case subscribe(cursor: [Position])
    /// Applier → broker: room for `count` more deliveries.
    case credit(count: UInt32)
    /// Broker → applier: stored messages, in stream order per stream.
    case deliver([Delivery])
    /// Applier → broker: everything up to `sequence` of `stream` is committed to the database.
    case applied(Position)
    /// Broker → applier: a consumer of `stream` starts (sent before its first delivery), or the stream under
    /// a running one changed. `created` is the stream's identity (JetStream's creation time, ns since
    /// 1970): another one than the cursor's means the stream was deleted and created again.
    case consuming(stream: String, created: UInt64)
    /// Broker → applier: the stream confirmed (asked after a jump) that it no longer holds `missing`; the
    /// next delivery of `stream` comes after them. A jump without this is the consumer's, not the stream's.
    case gone(stream: String, missing: ClosedRange<UInt64>)

    public enum Role: UInt8, Sendable { case capturer = 1, applier = 2 }

    /// At most this many payload bytes in one `publish`, so in one JetStream message: NATS's default
    /// `max_payload` (1 MiB), which every server accepts unless configured lower (the broker says so then).
    /// It is fixed: a larger one would need every server of the cluster to accept it.
    public static let maximumPublishBytes = 1 << 20
    /// At most this many deliveries in one `deliver` message (one fetch of the broker).
    public static let maximumDeliveriesPerMessage = 32
    /// At most this many payload bytes in one `deliver` message: the broker's fetches ask JetStream for no
    /// more (`max_bytes`, which counts subjects and headers too, so payloads alone stay below it). The rest
    /// of the frame limit is room for each delivery's stream name, sequence, subject and length prefixes.
    public static let maximumDeliveryBytes = Frame.defaultMaximumSize - (1 << 20)

    public struct Publish: Equatable, Sendable {
        public var batchID: UInt64
        public var shard: UInt32
        public var messageID: String
        public var payload: [UInt8]

        public init(batchID: UInt64, shard: UInt32, messageID: String, payload: [UInt8]) {
            self.batchID = batchID
            self.shard = shard
            self.messageID = messageID
            self.payload = payload
        }
    }

    public struct Position: Equatable, Hashable, Sendable {
        public var stream: String
        public var sequence: UInt64

        public init(stream: String, sequence: UInt64) {
            self.stream = stream
            self.sequence = sequence
        }
    }

    public struct Delivery: Equatable, Sendable {
        public var stream: String
        public var sequence: UInt64
        /// The subject it was published on: it names the publishing node (see `ChangeSubjects`).
        public var subject: String
        public var payload: [UInt8]
        /// The stream named by the message's republish headers (`Nats-Stream`, `Nats-Subject`,
        /// `Nats-Sequence`, `Nats-Last-Sequence`), when it has any: another stream republished it onto a
        /// change subject, so its subject says nothing about who published it. Never applied.
        public var republishedFrom: String?
        /// When the stream stored it (ns since 1970; 0 unknown): upstream HarmonyLite's messages carry no
        /// clock, and this is their stamp (`UpstreamEvent.stamp`).
        public var timestamp: Int64
        /// The publisher's name for it (header `HarmonyLite-Msg-Id`, see `MessageIdentity`), when it has one.
        public var messageID: String?

        public init(stream: String, sequence: UInt64, subject: String, payload: [UInt8], timestamp: Int64 = 0) {
            self.stream = stream
            self.sequence = sequence
            self.subject = subject
            self.payload = payload
            self.timestamp = timestamp
        }

        public init(stream: String, sequence: UInt64, subject: String, payload: [UInt8], republishedFrom: String?) {
            self.init(stream: stream, sequence: sequence, subject: subject, payload: payload)
            self.republishedFrom = republishedFrom
        }
    }

    enum TypeByte: UInt8 {
        case hello = 0x20, publish = 0x21, published = 0x22, publishFailed = 0x23
        case subscribe = 0x30, credit = 0x31, deliver = 0x32, applied = 0x33, consuming = 0x34, gone = 0x35
    }

    public var frame: Frame {
        var w = BinaryWriter()
        let type: TypeByte
        switch self {
        case .hello(let role):
            type = .hello
            w.write(role.rawValue)
            w.write(DataMessage.protocolVersion)
        case .publish(let publish):
            type = .publish
            w.write(publish.batchID)
            w.write(publish.shard)
            w.write(publish.messageID)
            w.write(publish.payload)
        case .published(let batchID, let stream, let sequence):
            type = .published
            w.write(batchID)
            w.write(stream)
            w.write(sequence)
        case .publishFailed(let batchID, let reason):
            type = .publishFailed
            w.write(batchID)
            w.write(reason)
        case .subscribe(let cursor):
            type = .subscribe
            w.write(UInt32(cursor.count))
            for position in cursor {
                w.write(position.stream)
                w.write(position.sequence)
            }
        case .credit(let count):
            type = .credit
            w.write(count)
        case .deliver(let deliveries):
            type = .deliver
            w.write(UInt32(deliveries.count))
            for delivery in deliveries {
                w.write(delivery.stream)
                w.write(delivery.sequence)
                w.write(delivery.subject)
                w.write(delivery.payload)
                // 0: not republished; 1 and the stream's name (possibly empty).
                if let from = delivery.republishedFrom {
                    w.write(UInt8(1))
                    w.write(from)
                } else {
                    w.write(UInt8(0))
                }
                w.write(delivery.timestamp)
                // 0: no message id; 1 and the id.
                if let id = delivery.messageID {
                    w.write(UInt8(1))
                    w.write(id)
                } else {
                    w.write(UInt8(0))
                }
            }
        case .applied(let position):
            type = .applied
            w.write(position.stream)
            w.write(position.sequence)
        case .consuming(let stream, let created):
            type = .consuming
            w.write(stream)
            w.write(created)
        case .gone(let stream, let missing):
            type = .gone
            w.write(stream)
            w.write(missing.lowerBound)
            w.write(missing.upperBound)
        }
        return Frame(type: type.rawValue, body: w.bytes)
    }

    public init(frame: Frame) throws(IPCError) {
        guard let type = TypeByte(rawValue: frame.type) else { throw IPCError(.unknownMessageType(frame.type)) }
        var r = BinaryReader(frame.body)
        do {
            switch type {
            case .hello:
                let raw = try r.readUInt8()
                guard let role = Role(rawValue: raw) else { throw IPCError(.malformedBody(messageType: frame.type, reason: "unknown role \(raw)")) }
                // A worker of another build (a reload rolls the workers one at a time): refused at its hello, so
                // no delivery in one layout is read in the other; the supervisor restarts it from the new binary.
                let version = r.remaining == 0 ? 1 : try r.readUInt8()
                guard version == DataMessage.protocolVersion else {
                    throw IPCError(
                        .handshakeFailed("the \(role) speaks data protocol \(version), this broker \(DataMessage.protocolVersion) (workers of two builds)"))
                }
                self = .hello(role: role)
            case .publish:
                self = .publish(Publish(batchID: try r.readUInt64(), shard: try r.readUInt32(), messageID: try r.readString(), payload: try r.readBytes()))
            case .published:
                self = .published(batchID: try r.readUInt64(), stream: try r.readString(), sequence: try r.readUInt64())
            case .publishFailed:
                self = .publishFailed(batchID: try r.readUInt64(), reason: try r.readString())
            case .subscribe:
                let count = Int(try r.readUInt32())
                var cursor: [Position] = []
                for _ in 0..<min(count, 1 << 16) { cursor.append(Position(stream: try r.readString(), sequence: try r.readUInt64())) }
                guard cursor.count == count else { throw IPCError(.malformedBody(messageType: frame.type, reason: "\(count) positions announced")) }
                self = .subscribe(cursor: cursor)
            case .credit:
                self = .credit(count: try r.readUInt32())
            case .deliver:
                let count = Int(try r.readUInt32())
                var deliveries: [Delivery] = []
                for _ in 0..<min(count, 1 << 20) {
                    var delivery = Delivery(stream: try r.readString(), sequence: try r.readUInt64(), subject: try r.readString(), payload: try r.readBytes())
                    switch try r.readUInt8() {
                    case 0: break
                    case 1: delivery.republishedFrom = try r.readString()
                    case let flag: throw IPCError(.malformedBody(messageType: frame.type, reason: "republish flag \(flag)"))
                    }
                    delivery.timestamp = try r.readInt64()
                    switch try r.readUInt8() {
                    case 0: break
                    case 1: delivery.messageID = try r.readString()
                    case let flag: throw IPCError(.malformedBody(messageType: frame.type, reason: "message id flag \(flag)"))
                    }
                    deliveries.append(delivery)
                }
                guard deliveries.count == count else { throw IPCError(.malformedBody(messageType: frame.type, reason: "\(count) deliveries announced")) }
                self = .deliver(deliveries)
            case .applied:
                self = .applied(Position(stream: try r.readString(), sequence: try r.readUInt64()))
            case .consuming:
                self = .consuming(stream: try r.readString(), created: try r.readUInt64())
            case .gone:
                let stream = try r.readString()
                let first = try r.readUInt64()
                let last = try r.readUInt64()
                guard first <= last else { throw IPCError(.malformedBody(messageType: frame.type, reason: "gone range \(first)…\(last) is empty")) }
                self = .gone(stream: stream, missing: first...last)
            }
        } catch let error as IPCError {
            throw error
        } catch {
            throw IPCError(.malformedBody(messageType: frame.type, reason: "\(error)"))
        }
        guard r.remaining == 0 else {
            throw IPCError(.malformedBody(messageType: frame.type, reason: "\(r.remaining) trailing bytes"))
        }
    }
}

extension ControlChannel {
    /// The broker's data socket's file name inside the node's run directory.
    public static let dataSocketName = "broker.sock"
}
