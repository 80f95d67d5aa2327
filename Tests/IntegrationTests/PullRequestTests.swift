import CNats
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import NATSClient

extension ProcessTests {
    /// Pull requests that outlive the client's wait, against a real nats-server. Every request of a pull
    /// subscription carries the same reply inbox, so libnats cannot tell which request a message answers:
    /// a message the server hands to a request the client already gave up on (its wait ended before the
    /// server's expiry: load, a slow flush) lands in whatever fetch is under way. A batch fetch returns
    /// only when it is full or the server ends it, so that message waited for the fetch's expiry — the
    /// rare 0.5 s and 5 s "first write after idle" outliers. Every request `PullConsumer` sends is a
    /// one-shot (`no_wait` with an expiry): the server ends a one-shot as soon as it handed anything out,
    /// so a message taken by an abandoned request of ours ends the fetch under way too.
    @Suite struct PullRequests {
        static let stream = "S"
        static let subject = "s"
        static let durable = "d"
        static let batch = 8
        static let maximumBytes = 1 << 20

        let directory: TemporaryDirectory
        let server: JetStreamServer
        let connection: NATSConnection
        let consumer: PullConsumer

        init() throws {
            directory = try TemporaryDirectory()
            server = try JetStreamServer(directory: directory.path)
            connection = try NATSConnection.connect(ConnectionSettings(urls: [server.url], name: "test"))
            _ = try connection.addStream(name: Self.stream, subjects: [Self.subject], replicas: 1)
            consumer = try PullConsumer(connection: connection, stream: Self.stream, subject: Self.subject, durable: Self.durable, afterSequence: 0)
        }

        @Test func messageTakenByAnAbandonedRequestOfOursEndsTheFetchUnderWay() throws {
            let wait: Int64 = 20_000
            try sendAbandoned(PullConsumer.request(maximum: Self.batch, maximumBytes: Self.maximumBytes, waitMilliseconds: wait))
            let fetch = try startFetch(waitMilliseconds: wait)
            try connection.publish(subject: Self.subject, payload: Array("row 1".utf8))
            // Without the one-shot, the fetch holds the message until its own request expires (20 s).
            #expect(eventually(timeout: 15) { fetch.result != nil }, "the fetch under way did not return the message before its expiry")
            #expect(fetch.result?.messages.map(\.sequence) == [1])
            #expect(fetch.result?.messages.first?.payload == Array("row 1".utf8))
        }

        /// The abandoned request got the message while no fetch was under way: the message and the status
        /// that ended that request wait on our inbox. The next fetch returns the message at once (libnats
        /// alone would take it, drop the status, ask for the rest of the batch and wait for its expiry).
        @Test func messageAlreadyOnTheInboxIsReturnedWithoutWaiting() throws {
            let wait: Int64 = 20_000
            try sendAbandoned(PullConsumer.request(maximum: Self.batch, maximumBytes: Self.maximumBytes, waitMilliseconds: wait))
            try connection.publish(subject: Self.subject, payload: Array("row 1".utf8))
            guard eventually(timeout: 10, { consumer.queuedOnInbox == 2 }) else {
                throw TestFailure("the message and its status are not on the inbox: \(consumer.queuedOnInbox)")
            }
            let fetch = try startFetch(waitMilliseconds: wait, sendsRequest: false)
            #expect(eventually(timeout: 15) { fetch.result != nil }, "the fetch kept a message it had until its expiry")
            #expect(fetch.result?.messages.map(\.sequence) == [1])
            #expect(consumer.queuedOnInbox == 0)
        }

        /// The mechanism itself: an abandoned plain request (what the long poll used to be) takes the
        /// message without ending anything, and the batch fetch under way keeps it until its expiry.
        @Test func messageTakenByAnAbandonedPlainRequestWaitsForTheBatchFetchsExpiry() throws {
            let wait: Int64 = 3_000
            // Held far longer than the fetch waits, so that it is still there when the message comes.
            try sendAbandoned(PullConsumer.Request(batch: 1, maximumBytes: Self.maximumBytes, noWait: false, expiresNanoseconds: 60_000_000_000))
            let fetch = try startFetch(waitMilliseconds: wait)
            try connection.publish(subject: Self.subject, payload: Array("row 1".utf8))
            #expect(eventually(timeout: 30) { fetch.result != nil })
            #expect(fetch.result?.messages.map(\.sequence) == [1])
            // The message was on our inbox within milliseconds; the fetch returned only at its expiry.
            #expect((fetch.result?.seconds ?? 0) >= Double(wait) / 1000 - 0.5)
        }

        // MARK: helpers

        final class Fetch: Sendable {
            let outcome = Mutex<(messages: [PullConsumer.Message], seconds: Double)?>(nil)
            var result: (messages: [PullConsumer.Message], seconds: Double)? { outcome.withLock { $0 } }
        }

        /// Sends `request` on the consumer's own inbox, as libnats would, and never waits for its answer:
        /// a request the client gave up on while the server still holds it. Returns once the server holds it.
        func sendAbandoned(_ request: PullConsumer.Request) throws {
            let before = try waitingRequests()
            let subject = "$JS.API.CONSUMER.MSG.NEXT.\(Self.stream).\(Self.durable)"
            let status = natsConnection_PublishRequestString(connection.connection, subject, consumer.inbox, request.json)
            guard status == NATS_OK else { throw TestFailure("publishing the abandoned request: \(status)") }
            guard try eventually(timeout: 10, { try waitingRequests() == before + 1 }) else {
                throw TestFailure("the server does not hold the abandoned request")
            }
        }

        /// One `fetch` on a thread of its own; returns once the server holds its request (if it sends one).
        func startFetch(waitMilliseconds: Int64, sendsRequest: Bool = true) throws -> Fetch {
            let before = try waitingRequests()
            let fetch = Fetch()
            let consumer = self.consumer
            Thread {
                let start = ContinuousClock.now
                let messages = (try? consumer.fetch(maximum: Self.batch, maximumBytes: Self.maximumBytes, waitMilliseconds: waitMilliseconds)) ?? []
                let elapsed = ContinuousClock.now - start
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                fetch.outcome.withLock { $0 = (messages, seconds) }
            }.start()
            guard sendsRequest else { return fetch }
            guard try eventually(timeout: 10, { try waitingRequests() == before + 1 }) else {
                throw TestFailure("the server does not hold the fetch's request")
            }
            return fetch
        }

        /// Pull requests the server holds for the consumer.
        func waitingRequests() throws -> Int {
            var info: UnsafeMutablePointer<jsConsumerInfo>?
            var code = jsErrCode(rawValue: 0)
            let status = js_GetConsumerInfo(&info, connection.jetStream, Self.stream, Self.durable, nil, &code)
            guard status == NATS_OK, let info else { throw TestFailure("consumer info: \(status) \(code)") }
            defer { jsConsumerInfo_Destroy(info) }
            return Int(info.pointee.NumWaiting)
        }
    }
}

extension PullConsumer.Request {
    /// The request as libnats sends it (`_sendPullRequest`: the expiry 10 ms short of the client's wait).
    var json: String {
        let expires = expiresNanoseconds >= 20_000_000 ? expiresNanoseconds - 10_000_000 : expiresNanoseconds
        return "{\"batch\":\(batch),\"max_bytes\":\(maximumBytes),\"expires\":\(expires)" + (noWait ? ",\"no_wait\":true}" : "}")
    }
}
