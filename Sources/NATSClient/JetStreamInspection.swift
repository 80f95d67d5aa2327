import CNats
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A consumer's delivery state as its leader reports it.
public struct ConsumerState: Equatable, Sendable, CustomStringConvertible {
    /// The last stream sequence it counts as delivered.
    public var deliveredStreamSequence: UInt64
    /// Every stream sequence up to here is acknowledged.
    public var ackFloorStreamSequence: UInt64
    public var ackPending: Int64
    public var redelivered: Int64

    public var description: String {
        "delivered through \(deliveredStreamSequence), acknowledged through \(ackFloorStreamSequence), \(ackPending) awaiting acknowledgement, \(redelivered) redelivered"
    }
}

extension NATSConnection {
    /// The lowest sequence `stream` holds at or after `sequence` on `subject` (default: any of its
    /// subjects; nil: none), asked of the stream's leader (`$JS.API.STREAM.MSG.GET` with `next_by_subj`),
    /// never of a replica that may lag.
    public func lowestSequence(in stream: String, subject: String = PullConsumer.everySubject, atOrAfter sequence: UInt64) throws(NATSError) -> UInt64? {
        let operation = "message get \(stream) from \(sequence)"
        let request: [String: Any] = ["seq": sequence, "next_by_subj": subject]
        guard let body = try? JSONSerialization.data(withJSONObject: request) else {
            throw NATSError(operation: operation, status: NATS_ERR, detail: "cannot encode the request")
        }
        var reply: OpaquePointer?
        let status = body.withUnsafeBytes { raw in
            natsConnection_Request(&reply, connection, "$JS.API.STREAM.MSG.GET.\(stream)", raw.baseAddress, Int32(raw.count), 2000)
        }
        guard status == NATS_OK, let reply else { throw NATSError(operation: operation, status: status) }
        defer { natsMsg_Destroy(reply) }
        let length = Int(natsMsg_GetDataLength(reply))
        let data = natsMsg_GetData(reply).map { Data(bytes: $0, count: length) } ?? Data()
        guard let answer = try? JSONDecoder().decode(MessageGetAnswer.self, from: data) else {
            throw NATSError(operation: operation, status: NATS_ERR, detail: "the answer is not a message-get response")
        }
        if let message = answer.message { return message.seq }
        // 10037: no message found at or after the sequence.
        if let error = answer.error, error.err_code == 10037 { return nil }
        throw NATSError(
            operation: operation, status: NATS_ERR, jetStreamCode: answer.error?.err_code ?? 0,
            detail: answer.error?.description ?? "neither a message nor an error")
    }

    /// The durable consumer's delivery state.
    public func consumerState(stream: String, consumer: String) throws(NATSError) -> ConsumerState {
        var info: UnsafeMutablePointer<jsConsumerInfo>?
        var code = jsErrCode(rawValue: 0)
        let status = js_GetConsumerInfo(&info, jetStream, stream, consumer, nil, &code)
        guard status == NATS_OK, let info else {
            throw NATSError(operation: "consumer info \(consumer) on \(stream)", status: status, jetStreamCode: Int(code.rawValue))
        }
        defer { jsConsumerInfo_Destroy(info) }
        return ConsumerState(
            deliveredStreamSequence: info.pointee.Delivered.Stream, ackFloorStreamSequence: info.pointee.AckFloor.Stream,
            ackPending: info.pointee.NumAckPending, redelivered: info.pointee.NumRedelivered)
    }
}

/// `io.nats.jetstream.api.v1.stream_msg_get_response`: only what the question needs.
private struct MessageGetAnswer: Decodable {
    struct Message: Decodable { var seq: UInt64 }
    struct Failure: Decodable {
        var err_code: Int?
        var description: String?
    }
    var message: Message?
    var error: Failure?
}

/// The last message on one subject of a stream, as `$JS.<domain>.API.STREAM.MSG.GET` answered it: still
/// base64 (untrusted; the caller bounds and decodes it).
public struct LastMessage: Equatable, Sendable {
    public var sequence: UInt64
    public var headersBase64: String
    public var dataBase64: String
}

extension NATSConnection {
    /// The last message on `subject` in `stream` of another JetStream domain (`apiPrefix`, e.g.
    /// `$JS.a.API`): nil when there is none. The answer is bounded to `limit` bytes.
    public func lastMessage(
        apiPrefix: String, stream: String, subject: String, limit: Int = 16384, timeoutMilliseconds: Int64 = 2000
    ) throws(NATSError) -> LastMessage? {
        let operation = "message get \(apiPrefix) \(stream) \(subject)"
        guard let body = try? JSONSerialization.data(withJSONObject: ["last_by_subj": subject]) else {
            throw NATSError(operation: operation, status: NATS_ERR, detail: "cannot encode the request")
        }
        var reply: OpaquePointer?
        let status = body.withUnsafeBytes { raw in
            natsConnection_Request(&reply, connection, "\(apiPrefix).STREAM.MSG.GET.\(stream)", raw.baseAddress, Int32(raw.count), timeoutMilliseconds)
        }
        guard status == NATS_OK, let reply else { throw NATSError(operation: operation, status: status) }
        defer { natsMsg_Destroy(reply) }
        let length = Int(natsMsg_GetDataLength(reply))
        guard length <= limit else { throw NATSError(operation: operation, status: NATS_ERR, detail: "the answer is longer than \(limit) bytes") }
        let data = natsMsg_GetData(reply).map { Data(bytes: $0, count: length) } ?? Data()
        guard let answer = try? JSONDecoder().decode(LastMessageAnswer.self, from: data) else {
            throw NATSError(operation: operation, status: NATS_ERR, detail: "the answer is not a message-get response")
        }
        if let message = answer.message { return LastMessage(sequence: message.seq, headersBase64: message.hdrs ?? "", dataBase64: message.data ?? "") }
        // 10037: no message; 10059: no such stream (that region has not made the bucket yet).
        if let error = answer.error, error.err_code == 10037 || error.err_code == 10059 { return nil }
        throw NATSError(
            operation: operation, status: NATS_ERR, jetStreamCode: answer.error?.err_code ?? 0,
            detail: answer.error?.description ?? "neither a message nor an error")
    }
}

private struct LastMessageAnswer: Decodable {
    struct Message: Decodable {
        var seq: UInt64
        var hdrs: String?
        var data: String?
    }
    struct Failure: Decodable {
        var err_code: Int?
        var description: String?
    }
    var message: Message?
    var error: Failure?
}
