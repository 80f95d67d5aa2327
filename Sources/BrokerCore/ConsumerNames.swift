/// The names of a node's pull consumers on one shard stream. Every consumer the broker creates gets a name
/// never used before, `<node>-<shard>-<token>`: nats-server 2.9.10 mishandles a consumer deleted and
/// created again under the same name while one of its replicas is down (the returning replica keeps a
/// leaderless copy with a frozen delivered sequence, and the cluster stays unhealthy; issue 14). The
/// previous consumer is deleted once its successor exists, and at start every leftover of this node's
/// shard (`leftovers`) is.
///
/// Tokens come from a pool of `poolSize` (`token(0)`…`token(poolSize - 1)`), so that the embedded server can
/// list every name a node may create, use, acknowledge on and delete (`EmbeddedServerConfig`): no other
/// user's consumer is within a node's reach. A fresh name is drawn at random among the pool's names not
/// in use, so a name comes back only after many creations (1 in `poolSize - 2` at each one).
public struct ConsumerNames: Sendable, Equatable {
    /// A token is this many lowercase hex digits (64 random bits).
    public static let tokenLength = 16
    /// How many names a node has per shard.
    public static let poolSize: UInt64 = 64

    /// `<node>-<shard>`: the fixed name older versions used, and the start of every name made here.
    public let base: String

    /// `node`: the node's NATS name (`harmonylite-node-<id>`); `shard`: the shard number.
    public init(node: String, shard: UInt64) {
        base = "\(node)-\(shard)"
    }

    /// The token of one creation: `value` (random, or anything unique per creation) as 16 hex digits.
    public static func token(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: tokenLength - digits.count) + digits
    }

    /// The name of the consumer created with `token` (from `token(_:)`).
    public func name(token: String) -> String { "\(base)-\(token)" }

    /// Every name of the pool, in token order.
    public var pool: [String] { (0..<Self.poolSize).map { name(token: Self.token($0)) } }

    /// A name of the pool that is not in `inUse`, chosen with `random` (any value); the pool's first free
    /// name after that one in token order. Nil only when every name of the pool is in use.
    public func fresh(avoiding inUse: Set<String>, random: UInt64) -> String? {
        let start = random % Self.poolSize
        for offset in 0..<Self.poolSize {
            let candidate = name(token: Self.token((start + offset) % Self.poolSize))
            if !inUse.contains(candidate) { return candidate }
        }
        return nil
    }

    /// Whether `name` is one of this node's consumers of this shard: the old fixed name, or `<base>-` and a
    /// token exactly. A prefix alone would not do: node 1's shard 1 (`…-node-1-1-…`) must not take node 11's
    /// shard 1 (`…-node-11-1-…`) or node 1's shard 11 (`…-node-1-11-…`), nor a name someone else chose.
    public func isOurs(_ name: String) -> Bool {
        if name == base { return true }
        let prefix = base + "-"
        guard name.hasPrefix(prefix) else { return false }
        let token = name.utf8.dropFirst(prefix.utf8.count)
        return token.count == Self.tokenLength && token.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// Of the stream's consumer names, those to delete: this node's consumers of this shard other than
    /// `keeping` (the one in use, if any), in the order listed.
    public func leftovers(among names: [String], keeping: String? = nil) -> [String] {
        names.filter { isOurs($0) && $0 != keeping }
    }
}
