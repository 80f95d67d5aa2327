import CNats

extension NATSConnection {
    /// The names of every consumer on `stream` (`$JS.API.CONSUMER.NAMES`, paged by libnats).
    public func consumerNames(stream: String) throws(NATSError) -> [String] {
        var list: UnsafeMutablePointer<jsConsumerNamesList>?
        var code = jsErrCode(rawValue: 0)
        let status = js_ConsumerNames(&list, jetStream, stream, nil, &code)
        // NATS_NOT_FOUND: the stream has no consumers (libnats' answer to an empty list).
        if status == NATS_NOT_FOUND && code.rawValue == 0 { return [] }
        guard status == NATS_OK, let list else {
            throw NATSError(operation: "consumer names on \(stream)", status: status, jetStreamCode: Int(code.rawValue))
        }
        defer { jsConsumerNamesList_Destroy(list) }
        let count = Int(list.pointee.Count)
        guard count > 0, let names = list.pointee.List else { return [] }
        return (0..<count).compactMap { names[$0].map { String(cString: $0) } }
    }

    /// Deletes the consumer `name` on `stream` (`$JS.API.CONSUMER.DELETE`).
    public func deleteConsumer(stream: String, name: String) throws(NATSError) {
        var code = jsErrCode(rawValue: 0)
        let status = js_DeleteConsumer(jetStream, stream, name, nil, &code)
        guard status == NATS_OK else {
            throw NATSError(operation: "delete consumer \(name) on \(stream)", status: status, jetStreamCode: Int(code.rawValue))
        }
    }
}
