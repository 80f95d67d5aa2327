import CNats

extension NATSConnection {
    /// The header that names an asynchronous publish, so its acknowledgement can be matched to it.
    ///
    /// Deliberately not `Nats-Msg-Id`: JetStream would answer a retry of an id it holds as a duplicate, and
    /// nats-server before 2.9.21 (Debian's 2.9.10) counts such a rejected proposal on each replica apart
    /// (`clfs`). After a kill -9 the replicas' counts differ, and a replica whose count is ahead silently
    /// skips the next message it is sent and stores the one after in its place: consumers led from that
    /// replica never see the skipped message (nats-server PR #4365; issue 14, README "NATS failovers"). So a
    /// retry of a message JetStream already stored is stored again; applying it again changes nothing (the
    /// same stamp never supersedes itself).
    public static let publishIDHeader = "HarmonyLite-Msg-Id"

    /// Publishes asynchronously, named by `messageID` (`publishIDHeader`; JetStream does not deduplicate it).
    /// The outcome arrives later through `publishAcks`; a publish not acknowledged within `timeoutMilliseconds`
    /// (NATS down, no stream leader) arrives there as a failure.
    public func publishAsync(subject: String, payload: [UInt8], messageID: String, timeoutMilliseconds: Int64 = 5000) throws(NATSError) {
        let message = try Self.message(subject: subject, payload: payload, headers: [(Self.publishIDHeader, messageID)])
        var options = jsPubOptions()
        jsPubOptions_Init(&options)
        options.MaxWait = timeoutMilliseconds
        var owned: OpaquePointer? = message
        let status = js_PublishMsgAsync(jetStream, &owned, &options)
        // On success libnats took the message (and set `owned` to NULL); on failure it is still ours.
        if let owned { natsMsg_Destroy(owned) }
        guard status == NATS_OK else { throw NATSError(operation: "publish to \(subject)", status: status) }
    }

    /// Publishes and waits for JetStream's acknowledgement (bulk transfers: the object store).
    public func publish(subject: String, payload: [UInt8], headers: [(String, String)] = []) throws(NATSError) {
        let message = try Self.message(subject: subject, payload: payload, headers: headers)
        defer { natsMsg_Destroy(message) }
        var ack: UnsafeMutablePointer<jsPubAck>?
        var code = jsErrCode(rawValue: 0)
        let status = js_PublishMsg(&ack, jetStream, message, nil, &code)
        if let ack { jsPubAck_Destroy(ack) }
        guard status == NATS_OK else { throw NATSError(operation: "publish to \(subject)", status: status, jetStreamCode: Int(code.rawValue)) }
    }

    /// A message the caller owns (and destroys, unless libnats takes it).
    private static func message(subject: String, payload: [UInt8], headers: [(String, String)]) throws(NATSError) -> OpaquePointer {
        var message: OpaquePointer?
        let created = payload.withUnsafeBytes { raw in
            natsMsg_Create(&message, subject, nil, raw.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(raw.count))
        }
        guard created == NATS_OK, let message else { throw NATSError(operation: "create message", status: created) }
        for (key, value) in headers {
            let status = natsMsgHeader_Set(message, key, value)
            guard status == NATS_OK else {
                natsMsg_Destroy(message)
                throw NATSError(operation: "set header \(key)", status: status)
            }
        }
        return message
    }
}
