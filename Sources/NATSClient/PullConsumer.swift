import CNats
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A durable pull consumer on one stream, created to start right after a given sequence, acknowledged
/// with AckAll: acknowledging a message acknowledges everything before it. One thread fetches while
/// another acknowledges.
public final class PullConsumer: @unchecked Sendable {
    /// A fetched message: its stream sequence and a copy of its data.
    public struct Message: Sendable {
        public var sequence: UInt64
        public var payload: [UInt8]
    }

    private let subscription: OpaquePointer
    private let connection: NATSConnection
    /// The last message of each fetch not yet acknowledged, kept to acknowledge everything up to it.
    private let retained = Mutex<[UInt64: UnsafeMutableRawPointer]>([:])

    /// Replaces any consumer named `durable` with one that delivers from `afterSequence + 1`.
    public init(connection: NATSConnection, stream: String, subject: String, durable: String, afterSequence: UInt64) throws(NATSError) {
        self.connection = connection
        var code = jsErrCode(rawValue: 0)
        _ = js_DeleteConsumer(connection.jetStream, stream, durable, nil, &code)
        var options = jsSubOptions()
        jsSubOptions_Init(&options)
        let cStream = strdup(stream)
        let cDurable = strdup(durable)
        defer {
            free(cStream)
            free(cDurable)
        }
        options.Stream = UnsafePointer(cStream)
        options.Config.Durable = UnsafePointer(cDurable)
        options.Config.AckPolicy = js_AckAll
        options.Config.AckWait = 300 * 1_000_000_000
        options.Config.MaxAckPending = 65536
        if afterSequence == .max {
            throw NATSError(operation: "consume \(stream)", status: NATS_INVALID_ARG, detail: "the cursor \(afterSequence) is the last possible sequence: nothing can follow it")
        }
        if afterSequence > 0 {
            options.Config.DeliverPolicy = js_DeliverByStartSequence
            options.Config.OptStartSeq = afterSequence + 1
        } else {
            options.Config.DeliverPolicy = js_DeliverAll
        }
        var subscription: OpaquePointer?
        let status = js_PullSubscribe(&subscription, connection.jetStream, subject, durable, nil, &options, &code)
        guard status == NATS_OK, let subscription else {
            throw NATSError(operation: "pull consumer \(durable) on \(stream)", status: status, jetStreamCode: Int(code.rawValue))
        }
        self.subscription = subscription
    }

    deinit {
        retained.withLock { $0.values.forEach { natsMsg_Destroy(OpaquePointer($0)) } }
        natsSubscription_Destroy(subscription)
    }

    /// Up to `maximum` messages of `maximumBytes` in all (as the server counts: payloads, subjects and
    /// headers) as soon as there are any: what the consumer has for us now, or else the first message to
    /// arrive within `waitMilliseconds`; empty when none came. A message alone above `maximumBytes` is never
    /// delivered (the server answers 409), so `maximumBytes` must be at least the server's `max_payload`.
    ///
    /// libnats' `natsSubscription_Fetch` returns only once the whole batch arrived or the request expired,
    /// so under a trickle of writes every message waited for the expiry (the ~500 ms lag steps). Here a
    /// batch is only ever asked for with `no_wait` (the server answers at once with what it has), and the
    /// long poll asks for one message, which ends the request the moment it arrives.
    public func fetch(maximum: Int, maximumBytes: Int, waitMilliseconds: Int64) throws(NATSError) -> [Message] {
        // The server answers a no_wait request at once; the expiry only bounds our wait for that answer.
        let available = try fetch(batch: maximum, maximumBytes: maximumBytes, noWait: true, expiresMilliseconds: 500)
        if !available.isEmpty { return available }
        return try fetch(batch: 1, maximumBytes: maximumBytes, noWait: false, expiresMilliseconds: waitMilliseconds)
    }

    private func fetch(batch: Int, maximumBytes: Int, noWait: Bool, expiresMilliseconds: Int64) throws(NATSError) -> [Message] {
        var request = jsFetchRequest()
        jsFetchRequest_Init(&request)
        request.Batch = Int32(clamping: batch)
        request.MaxBytes = Int64(maximumBytes)
        request.NoWait = noWait
        request.Expires = expiresMilliseconds * 1_000_000
        var list = natsMsgList()
        let status = natsSubscription_FetchRequest(&list, subscription, &request)
        // No messages: 404 for a no_wait request, 408 (a timeout) for a waiting one.
        if status == NATS_TIMEOUT || status == NATS_NOT_FOUND { return [] }
        guard status == NATS_OK else { throw NATSError(operation: "fetch", status: status, jetStreamCode: 0) }
        var messages: [Message] = []
        var last: (UInt64, OpaquePointer)?
        for index in 0..<Int(list.Count) {
            guard let message = list.Msgs[index] else { continue }
            list.Msgs[index] = nil
            var metadata: UnsafeMutablePointer<jsMsgMetaData>?
            guard natsMsg_GetMetaData(&metadata, message) == NATS_OK, let metadata else {
                natsMsg_Destroy(message)
                continue
            }
            let sequence = metadata.pointee.Sequence.Stream
            jsMsgMetaData_Destroy(metadata)
            let length = Int(natsMsg_GetDataLength(message))
            let data = natsMsg_GetData(message)
            let payload = data.map { Array(UnsafeRawBufferPointer(start: $0, count: length)) } ?? []
            messages.append(Message(sequence: sequence, payload: payload))
            if let (_, previous) = last { natsMsg_Destroy(previous) }
            last = (sequence, message)
        }
        natsMsgList_Destroy(&list)
        if let (sequence, message) = last {
            let address = Int(bitPattern: UnsafeMutableRawPointer(message))
            retained.withLock { $0[sequence] = UnsafeMutableRawPointer(bitPattern: address) }
        }
        return messages
    }

    /// Acknowledges everything up to `sequence` (which must be the last of a fetch).
    public func acknowledge(through sequence: UInt64) {
        let done = retained.withLock { retained in
            let done = retained.filter { $0.key <= sequence }
            for key in done.keys { retained[key] = nil }
            return done
        }
        for (retainedSequence, raw) in done {
            let message = OpaquePointer(raw)
            if retainedSequence == sequence { natsMsg_Ack(message, nil) }
            natsMsg_Destroy(message)
        }
    }
}
