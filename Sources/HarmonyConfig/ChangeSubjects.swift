/// The NATS subjects change events travel on, and what a subject says about who published it.
///
/// Each node publishes on `<subject_prefix>-<shard>.<node_id>`; the embedded servers let a node's own user
/// publish on its own subjects only, so the subject names the publisher. The shard streams also bind the
/// bare `<subject_prefix>-<shard>`, HarmonyLite's subject, for HarmonyLite publishers and external NATS: a
/// message there names no publisher and cannot be checked.
public enum ChangeSubjects {
    /// `<prefix>-<shard>`: HarmonyLite's subject, which names no publisher.
    public static func shared(prefix: String, shard: UInt64) -> String { "\(prefix)-\(shard)" }

    /// `<prefix>-<shard>.<node>`: the subject node `node` publishes its changes of `shard` on.
    public static func own(prefix: String, shard: UInt64, node: UInt64) -> String { "\(prefix)-\(shard).\(node)" }

    /// What shard stream `shard` binds: the shared subject and every node's (`*` is one whole token).
    public static func streamSubjects(prefix: String, shard: UInt64) -> [String] {
        let shared = shared(prefix: prefix, shard: shard)
        return [shared, shared + ".*"]
    }

    /// Who a subject says published a message.
    public enum Publisher: Equatable, Sendable {
        /// `<prefix>-<shard>`: unknown (a HarmonyLite publisher, or external NATS without per-node users).
        case unnamed(shard: UInt64)
        /// `<prefix>-<shard>.<node>`.
        case node(UInt64, shard: UInt64)
        /// Anything else: no subject a node or HarmonyLite publishes changes on.
        case notAChangeSubject
    }

    /// Parses `subject` (bytes from the network: any length, any content) against `prefix`. Numbers are
    /// canonical decimal (digits only, no leading zero, within UInt64): `.01`, `.+1`, an empty token, an
    /// overflow or a further token make it `notAChangeSubject`.
    public static func publisher(of subject: String, prefix: String) -> Publisher {
        let head = prefix + "-"
        guard subject.utf8.starts(with: head.utf8) else { return .notAChangeSubject }
        let tokens = subject.utf8.dropFirst(head.utf8.count).split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard (1...2).contains(tokens.count), let shard = canonicalNumber(tokens[0]), shard != 0 else { return .notAChangeSubject }
        guard tokens.count == 2 else { return .unnamed(shard: shard) }
        guard let node = canonicalNumber(tokens[1]), node != 0 else { return .notAChangeSubject }
        return .node(node, shard: shard)
    }

    /// Whether a batch that says it comes from `origin` may have come in on `subject`.
    public enum OriginCheck: Equatable, Sendable {
        /// The subject names the batch's origin.
        case confirmed
        /// The shared subject names no publisher: accepted as before per-node subjects (see `Publisher.unnamed`).
        case unchecked
        /// The subject names another node, or is no change subject: never applied.
        case refused(reason: String)
    }

    public static func check(subject: String, prefix: String, origin: UInt64) -> OriginCheck {
        switch publisher(of: subject, prefix: prefix) {
        case .unnamed: return .unchecked
        case .node(let node, _) where node == origin: return .confirmed
        case .node(let node, _):
            return .refused(reason: "the batch says it comes from node \(origin) but node \(node) published it (subject \(printable(subject)))")
        case .notAChangeSubject:
            return .refused(
                reason: "subject \(printable(subject)) is not \(prefix)-<shard> or \(prefix)-<shard>.<node_id>; the batch says it comes from node \(origin)")
        }
    }

    private static func canonicalNumber(_ token: Substring.UTF8View.SubSequence) -> UInt64? {
        guard let first = token.first, token.count <= 20, token.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            first != UInt8(ascii: "0") || token.count == 1
        else { return nil }
        var value: UInt64 = 0
        for digit in token {
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
            guard !overflow1 && !overflow2 else { return nil }
            value = sum
        }
        return value
    }

    /// At most 200 characters of a subject for a log line, control characters escaped.
    private static func printable(_ subject: String) -> String {
        let shown = subject.unicodeScalars.prefix(200).map { $0.properties.generalCategory == .control ? $0.escaped(asASCII: true) : String($0) }.joined()
        return "\"" + shown + (subject.unicodeScalars.count > 200 ? "…" : "") + "\""
    }
}
