import Foundation
import Signals
import TestSupport
import Testing

@testable import NATSClient

extension ProcessTests {
    /// A retry of a publish JetStream had stored after all (its acknowledgement was lost in a failover) is
    /// never answered as a duplicate: nats-server before 2.9.21 counts a proposal it rejects as a duplicate on
    /// each replica apart, and replicas whose counts drift after a kill -9 skip messages silently (issue 14).
    /// Against a real nats-server: the same batch published twice is stored twice, both acknowledged as new,
    /// each acknowledgement naming the batch's message id.
    @Suite struct PublishRetries {
        @Test func aRetryOfAStoredMessageIsStoredAgainNotRejectedAsADuplicate() throws {
            let directory = try TemporaryDirectory()
            let server = try JetStreamServer(directory: directory.path)
            let acks = PublishAcks()
            var settings = ConnectionSettings(urls: [server.url], name: "test")
            settings.publishAcks = acks
            let connection = try NATSConnection.connect(settings)
            _ = try connection.ensureStream(StreamSpecification(name: "S", subject: "s", replicas: 1, maxMessages: -1), updateExisting: false)
            let messageID = "1.incarnation.1.10-12"
            var results: [PublishResult] = []
            for attempt in 1...2 {
                try connection.publishAsync(subject: "s", payload: Array("batch".utf8), messageID: messageID)
                let answered = eventually(timeout: 10, interval: 0.05) {
                    results += acks.drain()
                    return results.count == attempt
                }
                #expect(answered, "no acknowledgement of publish \(attempt)")
            }
            #expect(
                results == [
                    .stored(messageID: messageID, stream: "S", sequence: 1, duplicate: false),
                    .stored(messageID: messageID, stream: "S", sequence: 2, duplicate: false),
                ])
            #expect(try connection.streamState("S").messages == 2)
        }
    }
}
