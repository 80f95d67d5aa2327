import BrokerCore
import IPC
import Testing

@Suite struct PublishCorrelationTests {
    func batch(_ id: UInt64, _ messageID: String) -> DataMessage.Publish {
        DataMessage.Publish(batchID: id, shard: 1, messageID: messageID, payload: [1, 2, 3])
    }

    @Test func aStoredAcknowledgementConfirmsExactlyTheBatchesWaitingForIt() {
        var correlation = PublishCorrelation()
        #expect(correlation.publishRequested(batch(10, "n1.a.1.1-5"), jetStreamReady: true) == .send(batch(10, "n1.a.1.1-5")))
        #expect(correlation.publishRequested(batch(11, "n1.a.1.6-9"), jetStreamReady: true) == .send(batch(11, "n1.a.1.6-9")))

        let answers = correlation.stored(messageID: "n1.a.1.1-5", stream: "s-1", sequence: 7)

        #expect(answers == [.published(batchID: 10, stream: "s-1", sequence: 7)])
        #expect(correlation.waiting == ["n1.a.1.6-9": [11]])
        #expect(correlation.confirmedBatches == 1)
        // Answered once: the same acknowledgement again confirms nothing.
        #expect(correlation.stored(messageID: "n1.a.1.1-5", stream: "s-1", sequence: 7).isEmpty)
    }

    @Test func oneAcknowledgementConfirmsEveryResendOfTheSameMessage() {
        var correlation = PublishCorrelation()
        _ = correlation.publishRequested(batch(10, "n1.a.1.1-5"), jetStreamReady: true)
        _ = correlation.publishRequested(batch(12, "n1.a.1.1-5"), jetStreamReady: true)

        let answers = correlation.stored(messageID: "n1.a.1.1-5", stream: "s-1", sequence: 7)

        #expect(answers == [.published(batchID: 10, stream: "s-1", sequence: 7), .published(batchID: 12, stream: "s-1", sequence: 7)])
        #expect(correlation.waiting.isEmpty)
        #expect(correlation.confirmedBatches == 2)
    }

    @Test func aFailedAcknowledgementFailsTheBatchesWaitingForIt() {
        var correlation = PublishCorrelation()
        _ = correlation.publishRequested(batch(10, "m"), jetStreamReady: true)
        _ = correlation.publishRequested(batch(11, "other"), jetStreamReady: true)

        let answers = correlation.failed(messageID: "m", reason: "timeout")

        #expect(answers == [.publishFailed(batchID: 10, reason: "timeout")])
        #expect(correlation.waiting == ["other": [11]])
        #expect(correlation.failedBatches == 1)
        #expect(correlation.confirmedBatches == 0)
    }

    @Test func aBatchNotHandedToNATSFailsAloneAndIsNoLongerWaiting() {
        var correlation = PublishCorrelation()
        _ = correlation.publishRequested(batch(10, "m"), jetStreamReady: true)
        _ = correlation.publishRequested(batch(12, "m"), jetStreamReady: true)

        #expect(correlation.notSent(batch(12, "m"), reason: "connection closed") == .publishFailed(batchID: 12, reason: "connection closed"))
        #expect(correlation.stored(messageID: "m", stream: "s-1", sequence: 3) == [.published(batchID: 10, stream: "s-1", sequence: 3)])
        #expect(correlation.failedBatches == 1)
    }

    @Test func aPublishWhileJetStreamIsNotReadyFailsAtOnceAndWaitsForNothing() {
        var correlation = PublishCorrelation()

        let action = correlation.publishRequested(batch(10, "m"), jetStreamReady: false)

        #expect(action == .reply(.publishFailed(batchID: 10, reason: "JetStream is not ready")))
        #expect(correlation.waiting.isEmpty)
        #expect(correlation.stored(messageID: "m", stream: "s-1", sequence: 1).isEmpty)
    }

    @Test func aLateAcknowledgementAfterTheCapturerReconnectedConfirmsNoNewerBatch() {
        var correlation = PublishCorrelation()
        correlation.capturerConnected()
        _ = correlation.publishRequested(batch(10, "old.1-5"), jetStreamReady: true)
        correlation.capturerDisconnected()
        #expect(correlation.waiting.isEmpty)
        correlation.capturerConnected()
        _ = correlation.publishRequested(batch(1_000, "new.6-9"), jetStreamReady: true)

        #expect(correlation.stored(messageID: "old.1-5", stream: "s-1", sequence: 4).isEmpty)
        #expect(correlation.failed(messageID: "old.1-5", reason: "timeout").isEmpty)
        #expect(correlation.waiting == ["new.6-9": [1_000]])
        #expect(correlation.stored(messageID: "new.6-9", stream: "s-1", sequence: 5) == [.published(batchID: 1_000, stream: "s-1", sequence: 5)])
    }

    @Test func aNewCapturerConnectionSupersedesTheWaitingBatchesOfAnEarlierOne() {
        var correlation = PublishCorrelation()
        correlation.capturerConnected()
        _ = correlation.publishRequested(batch(10, "old.1-5"), jetStreamReady: true)
        // The new capturer says hello before the old connection is seen closing.
        correlation.capturerConnected()

        #expect(correlation.waiting.isEmpty)
        #expect(correlation.stored(messageID: "old.1-5", stream: "s-1", sequence: 4).isEmpty)
    }

    @Test func aResentBatchAfterReconnectingIsConfirmedByTheAcknowledgementOfItsMessage() {
        var correlation = PublishCorrelation()
        _ = correlation.publishRequested(batch(10, "m"), jetStreamReady: true)
        correlation.capturerDisconnected()
        correlation.capturerConnected()
        // The capturer sends everything in flight again, same batch id, same message id.
        _ = correlation.publishRequested(batch(10, "m"), jetStreamReady: true)

        #expect(correlation.stored(messageID: "m", stream: "s-1", sequence: 4) == [.published(batchID: 10, stream: "s-1", sequence: 4)])
    }

    /// Issue 11: after a capturer restart, a late acknowledgement of the old capturer's message cannot
    /// confirm the new capturer's batch — even in the worst case where the new one reuses the old batch id
    /// (it does not: batch ids start from the wall clock): waiting batches are keyed by message id and
    /// forgotten with their connection. The new batch's own failure still reaches it.
    @Test func aLateAcknowledgementCannotConfirmANewIncarnationsBatchEvenWithTheSameBatchID() {
        var correlation = PublishCorrelation()
        correlation.capturerConnected()
        _ = correlation.publishRequested(batch(1, "n1.i.1.1-5"), jetStreamReady: true)
        correlation.capturerDisconnected()
        correlation.capturerConnected()
        _ = correlation.publishRequested(batch(1, "n1.i.1.6-9"), jetStreamReady: true)

        #expect(correlation.stored(messageID: "n1.i.1.1-5", stream: "s-1", sequence: 4).isEmpty)
        #expect(correlation.confirmedBatches == 0)
        #expect(correlation.failed(messageID: "n1.i.1.6-9", reason: "no responders") == [.publishFailed(batchID: 1, reason: "no responders")])
    }
}
