/// The JetStream objects a node uses, by name: the set-up that creates them (the supervisor, as the
/// administrator on the embedded server), the workers that use them and the embedded server's permissions
/// of the node's user all read them here.
extension Configuration {
    /// Shard stream `shard`'s name, `<stream_prefix>-<shard>`.
    public func changeStreamName(shard: UInt64) -> String { shardStreamName(shard) }

    /// In a region (`nats.region`): the stream in this region's JetStream domain that takes this region's
    /// publishes on shard `shard`'s subjects, `<stream_prefix>-<shard>-<region>`. Each region's shard stream
    /// (`changeStreamName`, the one nodes consume) binds no subject and sources every region's such stream,
    /// its own and the others' (across the leaf connections, `$JS.<region>.API`): no message goes round in
    /// a loop, as streams sourcing each other would.
    public func regionalStreamName(shard: UInt64, region: String) -> String { changeStreamName(shard: shard) + "-" + region }

    /// The other regions (`nats.regions` without this one), deduplicated, in order.
    public var otherRegions: [String] {
        var seen: Set<String> = [nats.region]
        return nats.regions.filter { seen.insert($0).inserted }
    }

    /// 1 to 32 letters, digits, `_` or `-`: a JetStream domain, a stream name's and a cluster name's part.
    public static func isRegionName(_ name: String) -> Bool {
        (1...32).contains(name.utf8.count)
            && name.utf8.allSatisfy { byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            }
    }

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
