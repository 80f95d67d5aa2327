import Foundation

/// The embedded nats-server speaks no control protocol: its life signs are answers to an HTTP probe of its
/// monitoring port (loopback, a random port, see `EmbeddedServerConfig`). `GET /jsz` reads the state of every
/// JetStream stream and of the meta group on that server, so a server whose JetStream is wedged does not
/// answer it. One was: nats-server 2.9.10 deadlocks a stream for good when a write to its file store fails
/// with a full disk (the block writer, holding the block's lock, rebuilds the store's state, which read-locks
/// every block, its own too); the routes that deliver publishes to that stream then block, the JetStream meta
/// group flaps between leaders forever, and freeing the disk does not help. Once the server is ready, the
/// state machine kills and restarts it like a hung worker when it has not answered for `[workers.nats]
/// heartbeat_timeout`.
///
/// This decides when to probe and what an answer means, with no I/O; the supervisor does the HTTP.
public struct EmbeddedServerProbe: Sendable {
    public static let path = "/jsz"
    /// Whether the server is current with the JetStream meta leader: nats-server's health check without the
    /// per-stream and per-consumer checks (those flap while consumers catch up). 200 and `"status":"ok"` when the
    /// server is the meta leader or a follower that applied what the leader committed and heard from it lately;
    /// 503 with the reason otherwise ("JetStream has not established contact with a meta leader").
    public static let metaCurrencyPath = "/healthz?js-server-only=true"
    /// The most of an answer that is read (a `/jsz` without details is about 1 KiB).
    public static let maximumResponseBytes = 1 << 20

    public enum Verdict: Equatable, Sendable {
        /// It answered: a life sign.
        case alive
        /// It answered that JetStream is disabled on it (nats-server 2.9 disables JetStream when it runs out
        /// of storage resources and never enables it again): no life sign, so it is restarted in time.
        case jetStreamDisabled
        /// Not an HTTP answer (garbage or cut short): no life sign.
        case malformed(String)
    }

    /// Seconds between probes.
    public let interval: Double
    /// Seconds after which an unanswered probe is abandoned (and a new one may start).
    public let timeout: Double
    private(set) var nextAt: Double
    private(set) var inFlightSince: Double?

    /// `heartbeatTimeout`: the nats child's `heartbeat_timeout` in seconds; probes go four times per timeout,
    /// as worker heartbeats do, so one slow answer is never fatal.
    public init(heartbeatTimeout: Double, now: Double) {
        interval = max(heartbeatTimeout / 4, 0.05)
        timeout = max(heartbeatTimeout / 2, 0.1)
        nextAt = now
    }

    /// Whether to start a probe now. `abandon`: a probe in flight for longer than `timeout` is to be closed first.
    public mutating func due(now: Double) -> (start: Bool, abandon: Bool) {
        if let since = inFlightSince {
            guard now - since >= timeout else { return (false, false) }
            inFlightSince = now
            nextAt = now + interval
            return (true, true)
        }
        guard now >= nextAt else { return (false, false) }
        inFlightSince = now
        nextAt = now + interval
        return (true, false)
    }

    /// The probe in flight ended (answered, refused, cut): the next one goes at the usual cadence.
    public mutating func finished() {
        inFlightSince = nil
    }

    /// When `due` has work next, for the supervisor's poll timeout.
    public var nextDeadline: Double { inFlightSince.map { $0 + timeout } ?? nextAt }

    /// What a whole HTTP/1.0 answer (status line, headers, body; at most `maximumResponseBytes`) means.
    public static func verdict(response: [UInt8]) -> Verdict {
        let status: Int, body: Data
        switch statusAndBody(response) {
        case .failure(let reason): return .malformed(reason.text)
        case .success(let answer): (status, body) = answer
        }
        // Any other status (a base path set in nats.server_config, say) still proves the server answers.
        guard status == 200 else { return .alive }
        if let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any], object["disabled"] as? Bool == true {
            return .jetStreamDisabled
        }
        return .alive
    }

    /// What a server's meta group says, from a whole answer to `metaCurrencyPath`.
    public enum MetaCurrency: Equatable, Sendable {
        case current
        /// Not current: nats-server's reason, or why the answer could not be read (at most 200 characters).
        case behind(String)
    }

    /// What a whole HTTP/1.0 answer to `metaCurrencyPath` (at most `maximumResponseBytes`) says: current only
    /// for status 200 with a JSON body whose `status` is `ok`.
    public static func metaCurrency(response: [UInt8]) -> MetaCurrency {
        let status: Int, body: Data
        switch statusAndBody(response) {
        case .failure(let reason): return .behind(reason.text)
        case .success(let answer): (status, body) = answer
        }
        let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
        if status == 200, object?["status"] as? String == "ok" { return .current }
        let reason = (object?["error"] as? String) ?? (object?["status"] as? String) ?? "HTTP status \(status)"
        return .behind(String(reason.prefix(200)))
    }

    /// Why an answer is not HTTP.
    struct NotHTTP: Error {
        let text: String
    }

    /// The status code and body of a whole HTTP/1.0 answer.
    private static func statusAndBody(_ response: [UInt8]) -> Result<(Int, Data), NotHTTP> {
        guard let headerEnd = find([13, 10, 13, 10], in: response) else { return .failure(NotHTTP(text: "no end of headers in \(response.count) bytes")) }
        let statusLine = String(decoding: response[..<headerEnd], as: UTF8.self).split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
            return .failure(NotHTTP(text: "status line \(statusLine.prefix(80).debugDescription)"))
        }
        return .success((status, Data(response[(headerEnd + 4)...])))
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start..<(start + needle.count)].elementsEqual(needle) {
            return start
        }
        return nil
    }
}
