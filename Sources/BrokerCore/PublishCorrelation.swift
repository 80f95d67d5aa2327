import IPC

/// Which of the capturer's batches each JetStream acknowledgement answers, with no I/O. The broker sends
/// every publish the capturer asks for asynchronously, keyed by its message id; libnats answers each
/// one later, by message id, as stored or failed. This keeps `message id → batch ids waiting for it` and
/// turns every answer into replies for the capturer.
///
/// **Same message id, several batches.** A capturer resends a batch it had no answer for with the same
/// message id (which names the changes it carries: node, capturer incarnation, shard, change-id range).
/// A stored acknowledgement means JetStream holds that message, so it confirms every batch waiting for it;
/// a failure answers every batch waiting for it (each is sent again by the capturer; a retry of a message
/// JetStream had stored after all is stored again, on purpose: see `NATSConnection.publishIDHeader`). An
/// answer for a message id nobody waits for any more is dropped.
///
/// **Capturer connections.** Waiting batches belong to the capturer connection that sent them. When that
/// connection ends, or another capturer connection says hello, they are forgotten: the capturer sends
/// every batch still in flight again on its next connection, so nothing is lost, and an acknowledgement of
/// a publish made for an old connection can no longer confirm anything on its own — it confirms a newer
/// batch only if that batch waits for the very same message id, i.e. the very same changes JetStream
/// stored. Batch ids start from the wall clock, so they never repeat across capturer incarnations either.
public struct PublishCorrelation: Sendable {
    public enum Action: Equatable, Sendable {
        /// Publish the batch to JetStream asynchronously; report a failure to send with `notSent`.
        case send(DataMessage.Publish)
        /// Answer the capturer now.
        case reply(DataMessage)
    }

    /// Message id → the capturer's batch ids waiting for that acknowledgement, in the order they were sent.
    public private(set) var waiting: [String: [UInt64]] = [:]
    /// Batches confirmed to the capturer.
    public private(set) var confirmedBatches: Int64 = 0
    /// Batches answered as failed (not sent, or not acknowledged).
    public private(set) var failedBatches: Int64 = 0

    public init() {}

    /// The capturer asks to publish `publish`. With JetStream not ready it fails at once: the capturer
    /// keeps the batch and sends it again later.
    public mutating func publishRequested(_ publish: DataMessage.Publish, jetStreamReady: Bool) -> Action {
        guard jetStreamReady else {
            return .reply(.publishFailed(batchID: publish.batchID, reason: "JetStream is not ready"))
        }
        waiting[publish.messageID, default: []].append(publish.batchID)
        return .send(publish)
    }

    /// A `send` could not be handed to NATS: that batch (and only that one) fails now.
    public mutating func notSent(_ publish: DataMessage.Publish, reason: String) -> DataMessage {
        if var batches = waiting[publish.messageID], let index = batches.firstIndex(of: publish.batchID) {
            batches.remove(at: index)
            waiting[publish.messageID] = batches.isEmpty ? nil : batches
        }
        failedBatches += 1
        return .publishFailed(batchID: publish.batchID, reason: reason)
    }

    /// JetStream stored (or had already stored) the message `messageID`: confirms exactly the batches
    /// waiting for it.
    public mutating func stored(messageID: String, stream: String, sequence: UInt64) -> [DataMessage] {
        let batches = waiting.removeValue(forKey: messageID) ?? []
        confirmedBatches += Int64(batches.count)
        return batches.map { .published(batchID: $0, stream: stream, sequence: sequence) }
    }

    /// The publish of `messageID` was not acknowledged: the batches waiting for it fail.
    public mutating func failed(messageID: String, reason: String) -> [DataMessage] {
        let batches = waiting.removeValue(forKey: messageID) ?? []
        failedBatches += Int64(batches.count)
        return batches.map { .publishFailed(batchID: $0, reason: reason) }
    }

    /// A capturer connection said hello: batches of any earlier connection are forgotten (see above).
    public mutating func capturerConnected() {
        waiting.removeAll()
    }

    /// The capturer's connection ended: its batches are forgotten (see above).
    public mutating func capturerDisconnected() {
        waiting.removeAll()
    }
}
