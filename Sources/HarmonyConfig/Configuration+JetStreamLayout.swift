/// The JetStream objects a node uses, by name: the set-up that creates them (the supervisor, as the
/// administrator on the embedded server), the workers that use them and the embedded server's permissions
/// of the node's user all read them here.
extension Configuration {
    /// Shard stream `shard`'s name, `<stream_prefix>-<shard>`.
    public func changeStreamName(shard: UInt64) -> String { shardStreamName(shard) }

    /// Every shard stream's name, shard 1 first.
    public var changeStreamNames: [String] { (1...max(1, replicationLog.shards)).map { changeStreamName(shard: $0) } }

    /// The KV bucket of the snapshot lease (one key, `snapshotLeaseKey`).
    public var snapshotLeaseBucket: String { nats.streamPrefix + "-snapshot-lease" }
    public static let snapshotLeaseKey = "snapshot-leader"
    /// The key, in the lease bucket, where a node whose empty database waits for a snapshot asks the lease
    /// holder to save one (it ages out with the bucket's TTL unless the node asks again).
    public static let snapshotRequestKey = "snapshot-request"

    /// The lease's TTL in seconds (`snapshot.leader_ttl`, 30 s when unset).
    public var snapshotLeaseTTLSeconds: Double { Double(snapshot.leaderTTL > 0 ? snapshot.leaderTTL : 30000) / 1000 }

    /// The KV bucket where each running node claims its id (key `node-<id>`, `NodeClaim`), and its TTL.
    public var nodeClaimsBucket: String { nats.streamPrefix + "-node-claims" }
    public static let nodeClaimTTLSeconds: Int64 = 10
    public static func nodeClaimKey(_ nodeID: UInt64) -> String { "node-\(nodeID)" }

    /// The object store bucket of the `nats` snapshot store.
    public var snapshotObjectBucket: String { snapshot.nats.bucket.isEmpty ? nats.streamPrefix + "-snapshot-store" : snapshot.nats.bucket }
}
