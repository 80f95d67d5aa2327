import CNats

extension NATSConnection {
    /// Publishes asynchronously with `Nats-Msg-Id` set, so JetStream stores a retry of the same id once.
    /// The outcome arrives later through `publishAcks`; a publish not acknowledged within `timeoutMilliseconds`
    /// (NATS down, no stream leader) arrives there as a failure.
    public func publishAsync(subject: String, payload: [UInt8], messageID: String, timeoutMilliseconds: Int64 = 5000) throws(NATSError) {
        var message: OpaquePointer?
        let created = payload.withUnsafeBytes { raw in
            natsMsg_Create(&message, subject, nil, raw.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(raw.count))
        }
        guard created == NATS_OK, let message else { throw NATSError(operation: "create message", status: created) }
        let header = natsMsgHeader_Set(message, "Nats-Msg-Id", messageID)
        guard header == NATS_OK else {
            natsMsg_Destroy(message)
            throw NATSError(operation: "set Nats-Msg-Id", status: header)
        }
        var options = jsPubOptions()
        jsPubOptions_Init(&options)
        options.MaxWait = timeoutMilliseconds
        var owned: OpaquePointer? = message
        let status = js_PublishMsgAsync(jetStream, &owned, &options)
        // On success libnats took the message (and set `owned` to NULL); on failure it is still ours.
        if let owned { natsMsg_Destroy(owned) }
        guard status == NATS_OK else { throw NATSError(operation: "publish to \(subject)", status: status) }
    }
}
