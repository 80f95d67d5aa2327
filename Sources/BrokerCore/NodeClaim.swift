import Foundation

/// One node id, one running node: each node's broker claims key `node-<id>` in the cluster's claims bucket
/// (`<stream_prefix>-node-claims`, a KV bucket whose TTL is `ttl`) before it touches any consumer, and
/// renews it every `ttl / 3` s; a clean stop of the node deletes it (see `releases(on:)`). Two nodes started with one id (a copied config, a
/// cloned VM) would delete each other's consumers as leftovers and diverge silently.
///
/// At start, a claim that is not this instance's is watched: renewed meanwhile (its revision changes), its
/// node runs, and the start is refused naming both hosts; not renewed, it is a crashed node's stale claim
/// and ages out within `ttl` s, and the start goes on. So a node killed with `kill -9` (or a crashed host)
/// restarts after at most `ttl` s (TTL expiry); a broker restarted under the same supervisor finds its own
/// instance in the claim and goes on at once. Pure: the glue reads the key and does what `read` says.
public struct NodeClaim: Sendable {
    /// Who holds a claim: the instance (host, database path, supervisor pid: the same instance across
    /// broker restarts), and for people the host and the database path.
    public struct Holder: Equatable, Sendable {
        public var instance: String
        public var host: String
        public var databasePath: String

        public init(instance: String, host: String, databasePath: String) {
            (self.instance, self.host, self.databasePath) = (instance, host, databasePath)
        }

        static let tag = "harmonylite-node-claim-1"

        /// The key's value: four lines.
        public var encoded: [UInt8] { Array([Self.tag, instance, host, databasePath].joined(separator: "\n").utf8) }

        /// A value read from the bucket (untrusted: bounded, four lines, or nil).
        public init?(decoding bytes: [UInt8]) {
            guard bytes.count <= 4096 else { return nil }
            let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            guard lines.count == 4, lines[0] == Self.tag else { return nil }
            self.init(instance: lines[1], host: lines[2], databasePath: lines[3])
        }
    }

    /// What the glue does next.
    public enum Step: Equatable, Sendable {
        /// Nobody holds the id: create the key (only if absent), then `read` again.
        case create
        /// This instance holds it already: write the key over (renewing it); the claim is held.
        case takeOver
        /// Another holder's claim is being watched: not ready yet, `read` again in a second; `say` when not
        /// nil, at most every `reportInterval` s.
        case wait(say: Wait?)
        /// Another running node holds this id: the start is refused (`WorkerExit.refused`).
        case refuse(String)
    }

    /// What a start that waits for another holder's claim says.
    public enum Wait: Equatable, Sendable {
        /// First seen: held by `holder` (nil: an unreadable claim); watched for up to `ttl` s.
        case watching(nodeID: UInt64, holder: Holder?, ttl: Double)
        /// Not renewed for `seconds` s: a stopped node's claim, which ages out within `ttl` s of its last renewal.
        case stillWaiting(nodeID: UInt64, seconds: Int, holder: Holder?, ttl: Double)

        /// The log line's message: constant per case.
        public var message: String {
            switch self {
            case .watching: "waiting for another holder's claim of this node id: renewed, that node runs and this start is refused; not renewed, it ages out"
            case .stillWaiting: "still waiting for another holder's claim of this node id: not renewed, it ages out"
            }
        }

        /// The values, as log metadata.
        public var metadata: [String: String] {
            switch self {
            case .watching(let nodeID, let holder, let ttl):
                Self.holderMetadata(holder).merging(["node_id": "\(nodeID)", "watch_s": "\(Int(ttl))"]) { $1 }
            case .stillWaiting(let nodeID, let seconds, let holder, let ttl):
                Self.holderMetadata(holder).merging(["node_id": "\(nodeID)", "waited_s": "\(seconds)", "ttl_s": "\(Int(ttl))"]) { $1 }
            }
        }

        /// The worker's status line (`-status`, systemd's STATUS=): starts "waiting for" / "still waiting for".
        public var statusLine: String {
            switch self {
            case .watching(let nodeID, let holder, let ttl):
                "waiting for node id \(nodeID)'s claim: it is held by \(Self.describe(holder)); watching it for up to \(Int(ttl)) s "
                    + "(renewed: that node runs and this start is refused; not renewed: a stopped node's claim, which ages out)"
            case .stillWaiting(let nodeID, let seconds, let holder, let ttl):
                "still waiting for node id \(nodeID)'s claim (\(seconds) s): held by \(Self.describe(holder)), not renewed; "
                    + "it ages out within \(Int(ttl)) s of its last renewal"
            }
        }

        static func describe(_ holder: Holder?) -> String { holder.map { "host \($0.host) (database \($0.databasePath))" } ?? "an unreadable claim" }

        static func holderMetadata(_ holder: Holder?) -> [String: String] {
            holder.map { ["held_by_host": $0.host, "held_by_database": $0.databasePath] } ?? ["held_by": "an unreadable claim"]
        }
    }

    public static let reportInterval = 5.0

    /// Why the broker stops, as far as its claim is concerned.
    public enum Stop: Equatable, Sendable {
        /// The node stops: its supervisor asked (`systemctl stop`, a reload) or a signal reached the broker.
        case nodeStopping
        /// The supervisor is gone (killed with `kill -9`, crashed): the node crashed. The broker sees its
        /// control socket close before the kernel's parent-death SIGKILL reaches it, and could still say
        /// goodbye to NATS: it must not, or the node's restart (or a duplicate) finds the id free at once.
        case supervisorGone
        /// The broker's own failure: its supervisor starts it again, and that broker takes the claim over
        /// at once (same instance). Deleting it meanwhile would free the id to a duplicate watching it.
        case brokerFailed
    }

    /// Whether a stop deletes the claim at once: only a node that stops gives its id up; every other stop
    /// leaves the claim to its successor under the same supervisor, or to age out (a crash).
    public static func releases(on stop: Stop) -> Bool { stop == .nodeStopping }

    public let nodeID: UInt64
    public let me: Holder
    public let ttl: Double
    /// The other holder's claim as first seen: its revision, since when, and when the wait was said last.
    private var watched: (holder: Holder?, revision: UInt64, since: Double, said: Double)?

    public init(nodeID: UInt64, me: Holder, ttl: Double) {
        self.nodeID = nodeID
        self.me = me
        self.ttl = ttl
    }

    /// How often the holder renews the claim.
    public var renewInterval: Double { max(1, ttl / 3) }

    /// The key as read now: nil when absent; else its holder (nil: unreadable) and revision.
    public mutating func read(_ current: (holder: Holder?, revision: UInt64)?, now: Double) -> Step {
        guard let current else {
            watched = nil
            return .create
        }
        if current.holder?.instance == me.instance { return .takeOver }
        let other = Wait.describe(current.holder)
        guard let seen = watched else {
            watched = (current.holder, current.revision, now, now)
            return .wait(say: .watching(nodeID: nodeID, holder: current.holder, ttl: ttl))
        }
        if current.revision != seen.revision {
            return .refuse(
                "node_id \(nodeID) is already used by a running node on \(other); this node is on host \(me.host) "
                    + "(database \(me.databasePath)). Two nodes with one id delete each other's consumers and diverge: give this node "
                    + "its own node_id (or -node-id), then start it again")
        }
        guard now - seen.said >= Self.reportInterval else { return .wait(say: nil) }
        watched?.said = now
        return .wait(say: .stillWaiting(nodeID: nodeID, seconds: Int(now - seen.since), holder: current.holder, ttl: ttl))
    }
}

extension NodeClaim {
    /// Another region's claim key as its last message came (base64 headers and data, untrusted): nil when
    /// the key is deleted or purged (a clean stop), else its holder (nil: unreadable) and revision.
    public static func remoteEntry(sequence: UInt64, headersBase64: String, dataBase64: String) -> (holder: Holder?, revision: UInt64)? {
        guard headersBase64.utf8.count <= 8192, dataBase64.utf8.count <= 8192 else { return (nil, sequence) }
        let headers = Data(base64Encoded: headersBase64).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let operation = headers.split(whereSeparator: \.isNewline).first { $0.lowercased().hasPrefix("kv-operation:") }
        if let operation, ["DEL", "PURGE"].contains(operation.dropFirst("kv-operation:".count).trimmingCharacters(in: .whitespaces)) { return nil }
        let data = Data(base64Encoded: dataBase64).map { [UInt8]($0) }
        return (data.flatMap { Holder(decoding: $0) }, sequence)
    }
}
