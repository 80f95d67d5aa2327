import CNats
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A durable pull consumer on one stream, created to start right after a given sequence, acknowledged
/// with AckAll: acknowledging a message acknowledges everything before it. One thread fetches while
/// another acknowledges.
public final class PullConsumer: @unchecked Sendable {
    /// A fetched message: its stream sequence, the subject it was published on and a copy of its data.
    public struct Message: Sendable {
        public var sequence: UInt64
        public var subject: String
        public var payload: [UInt8]
        /// Set when the message carries republish headers (`republishHeaders`): the `Nats-Stream` it
        /// names (empty when only another of them is there).
        public var republishedFrom: String? = nil
        /// When the stream stored it (ns since 1970): the stamp of upstream HarmonyLite's messages.
        public var timestamp: Int64 = 0
        /// Its `NATSConnection.publishIDHeader`, at most `maximumMessageIDLength` bytes (nil: none, or longer).
        public var messageID: String? = nil
    }

    /// The longest message id header kept: ours are short, and a header is bytes from the network.
    public static let maximumMessageIDLength = 200

    /// The message's publish id header, when it has one of at most `maximumMessageIDLength` bytes.
    static func messageID(_ message: OpaquePointer) -> String? {
        var value: UnsafePointer<CChar>?
        guard natsMsgHeader_Get(message, NATSConnection.publishIDHeader, &value) == NATS_OK, let value,
            strnlen(value, maximumMessageIDLength + 1) <= maximumMessageIDLength
        else { return nil }
        return String(cString: value)
    }

    /// The headers JetStream sets on a message a stream republishes (`republish` in its configuration).
    public static let republishHeaders = ["Nats-Stream", "Nats-Subject", "Nats-Sequence", "Nats-Last-Sequence"]

    /// The republish headers' stream of `message`, "" when it has only others of them, nil when none.
    static func republishedFrom(_ message: OpaquePointer) -> String? {
        var found: String?
        for name in republishHeaders {
            var value: UnsafePointer<CChar>?
            guard natsMsgHeader_Get(message, name, &value) == NATS_OK else { continue }
            if name == "Nats-Stream", let value { return String(String(cString: value).prefix(256)) }
            found = found ?? ""
        }
        return found
    }

    private let subscription: OpaquePointer
    private let connection: NATSConnection
    /// The last message of each fetch not yet acknowledged, kept to acknowledge everything up to it.
    private let retained = Mutex<[UInt64: UnsafeMutableRawPointer]>([:])

    /// Every subject of the stream: a consumer filtered on one of several subjects would miss the others,
    /// and `>` matches them all (NATS 2.9 takes one filter subject; a wider one is accepted).
    public static let everySubject = ">"

    /// Creates the consumer `durable`, which delivers from `afterSequence + 1` the stream's messages on
    /// `subject` (default: all of them). `durable` must be a name the stream never had: nats-server 2.9
    /// mishandles a consumer deleted and created again under one name while a replica is down (see
    /// `ConsumerNames`), so nothing here deletes or reuses one.
    public init(connection: NATSConnection, stream: String, subject: String = everySubject, durable: String, afterSequence: UInt64) throws(NATSError) {
        self.connection = connection
        var code = jsErrCode(rawValue: 0)
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
            throw NATSError(
                operation: "consume \(stream)", status: NATS_INVALID_ARG,
                detail: "the cursor \(afterSequence) is the last possible sequence: nothing can follow it")
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

    /// A pull request: what `fetch` asks the server for (libnats sends the expiry 10 ms short of its wait).
    struct Request: Equatable {
        var batch: Int
        var maximumBytes: Int
        var noWait: Bool
        var expiresNanoseconds: Int64
    }

    /// The request `fetch` sends: a one-shot (`no_wait` with an expiry), see `fetch`.
    static func request(maximum: Int, maximumBytes: Int, waitMilliseconds: Int64) -> Request {
        Request(batch: maximum, maximumBytes: maximumBytes, noWait: true, expiresNanoseconds: waitMilliseconds * 1_000_000)
    }

    /// What is on our inbox already, without asking the server: libnats takes the queued messages first,
    /// and with a deadline already passed it returns them without sending a request.
    static func queued(maximum: Int, maximumBytes: Int) -> Request {
        Request(batch: maximum, maximumBytes: maximumBytes, noWait: true, expiresNanoseconds: 1)
    }

    /// The inbox every request of this consumer names as its reply subject.
    var inbox: String { String(cString: natsSubscription_GetSubject(subscription)) }

    /// Messages and statuses on our inbox that no fetch took yet.
    var queuedOnInbox: Int {
        var count: Int32 = 0
        return natsSubscription_GetPending(subscription, &count, nil) == NATS_OK ? Int(count) : 0
    }

    /// Up to `maximum` messages of `maximumBytes` in all (as the server counts: payloads, subjects and
    /// headers) as soon as there are any: what the consumer has for us now, or else what arrives first
    /// within `waitMilliseconds`; empty when none came. A message alone above `maximumBytes` is never
    /// delivered (the server answers 409), so `maximumBytes` must be at least the server's `max_payload`.
    ///
    /// One request, a one-shot: `no_wait` with an expiry. The server holds it until a message arrives or
    /// it expires, hands out what it has (up to the batch), and ends it at once with a status (408, or
    /// 404 on newer servers) — libnats returns when the batch is full or a status comes, so a plain batch
    /// request would keep a lone message until the expiry (the ~500 ms lag steps of a trickle of writes).
    /// It must be the only kind we send: every request names the same inbox, so libnats cannot tell which
    /// request a message answers. A request the client stopped waiting for (its wait ends when the
    /// server's expiry, 10 ms shorter, should have; on a loaded machine the 408 can come later) stays at
    /// the server and takes the next message; as a one-shot it ends with a status right after it, which
    /// ends the fetch under way too. An abandoned plain request (the 1-message long poll we used to send
    /// after a `no_wait` batch) ended nothing, and the batch fetch under way kept its message until the
    /// batch's expiry: the rare 0.5 s (and earlier 5 s) first write after idle.
    ///
    /// A message an abandoned request got while no fetch was under way waits on our inbox, with the status
    /// that ended that request. libnats takes such messages first but drops the status, and then still
    /// asks the server for the rest of the batch and waits for it; so those are taken on their own first
    /// (only a message landing between that check and libnats' own, a few instructions, can still wait).
    public func fetch(maximum: Int, maximumBytes: Int, waitMilliseconds: Int64) throws(NATSError) -> [Message] {
        if queuedOnInbox > 0 {
            let queued = try fetch(Self.queued(maximum: maximum, maximumBytes: maximumBytes))
            if !queued.isEmpty { return queued }
        }
        return try fetch(Self.request(maximum: maximum, maximumBytes: maximumBytes, waitMilliseconds: waitMilliseconds))
    }

    private func fetch(_ wanted: Request) throws(NATSError) -> [Message] {
        var request = jsFetchRequest()
        jsFetchRequest_Init(&request)
        request.Batch = Int32(clamping: wanted.batch)
        request.MaxBytes = Int64(wanted.maximumBytes)
        request.NoWait = wanted.noWait
        request.Expires = wanted.expiresNanoseconds
        var list = natsMsgList()
        let status = natsSubscription_FetchRequest(&list, subscription, &request)
        // No messages: 408 when the request expired (or an abandoned request ended: see above), 404 when
        // the server answers a no_wait request at once.
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
            let timestamp = metadata.pointee.Timestamp
            jsMsgMetaData_Destroy(metadata)
            let length = Int(natsMsg_GetDataLength(message))
            let data = natsMsg_GetData(message)
            let payload = data.map { Array(UnsafeRawBufferPointer(start: $0, count: length)) } ?? []
            let subject = natsMsg_GetSubject(message).map { String(cString: $0) } ?? ""
            messages.append(
                Message(
                    sequence: sequence, subject: subject, payload: payload, republishedFrom: Self.republishedFrom(message), timestamp: timestamp,
                    messageID: Self.messageID(message)))
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
