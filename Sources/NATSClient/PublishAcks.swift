import CNats
import SystemCalls

/// The outcome of an asynchronous publish, as libnats reports it on its own thread.
public enum PublishResult: Sendable, Equatable {
    case stored(messageID: String, stream: String, sequence: UInt64, duplicate: Bool)
    case failed(messageID: String, reason: String)
}

/// Where the acknowledgement callbacks leave their results for the broker's poll loop.
public typealias PublishAcks = EventQueue<PublishResult>

/// libnats calls this on its own thread for every asynchronous publish. A plain global function: a closure
/// here could be inferred main-actor isolated and crash when called from a foreign thread.
func publishAckHandler(
    _ js: OpaquePointer?, _ message: OpaquePointer?, _ ack: UnsafeMutablePointer<jsPubAck>?,
    _ failure: UnsafeMutablePointer<jsPubAckErr>?, _ closure: UnsafeMutableRawPointer?
) {
    defer { natsMsg_Destroy(message) }
    guard let closure else { return }
    let sink = Unmanaged<PublishAcks>.fromOpaque(closure).takeUnretainedValue()
    var idPointer: UnsafePointer<CChar>?
    natsMsgHeader_Get(message, NATSConnection.publishIDHeader, &idPointer)
    let messageID = idPointer.map { String(cString: $0) } ?? ""
    if let ack {
        let stream = ack.pointee.Stream.map { String(cString: $0) } ?? ""
        sink.push(.stored(messageID: messageID, stream: stream, sequence: ack.pointee.Sequence, duplicate: ack.pointee.Duplicate))
    } else if let failure {
        let text = failure.pointee.ErrText.map { String(cString: $0) } ?? String(cString: natsStatus_GetText(failure.pointee.Err))
        sink.push(.failed(messageID: messageID, reason: text))
    }
}
