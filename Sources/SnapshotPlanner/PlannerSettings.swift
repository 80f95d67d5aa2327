/// What the planner needs from the node's configuration, in the planner's units (seconds, counts).
public struct PlannerSettings: Equatable, Sendable {
    /// `snapshot.enabled`: false makes the worker ready at once and do nothing else.
    public var enabled: Bool
    /// `replicate`: a node that does not replicate has nothing to restore.
    public var replicate: Bool
    /// `publish`: only nodes that publish take snapshots (their database is a source of changes).
    public var publish: Bool
    /// `snapshot.store`, for messages.
    public var storeName: String
    /// The shard streams, in order.
    public var streams: [String]
    /// `snapshot.leader_ttl` in seconds.
    public var leaseTTL: Double
    /// `snapshot.interval` in seconds; nil: no saves on a timer.
    public var interval: Double?
    /// `replication_log.max_entries`.
    public var maxEntries: Int64

    public init(
        enabled: Bool, replicate: Bool, publish: Bool, storeName: String, streams: [String],
        leaseTTL: Double, interval: Double?, maxEntries: Int64
    ) {
        self.enabled = enabled
        self.replicate = replicate
        self.publish = publish
        self.storeName = storeName
        self.streams = streams
        self.leaseTTL = leaseTTL
        self.interval = interval
        self.maxEntries = maxEntries
    }

    /// How often the lease is taken or renewed: three times per TTL, at most once a second.
    var leaseCheckInterval: Double { max(1, leaseTTL / 3) }
    /// Messages a stream may take after the newest snapshot before the next one is due.
    var historyThreshold: UInt64 { UInt64(max(1, maxEntries / 2)) }
}
