/// Where the registry lives: one KV bucket, one key per node. The bucket's TTL ages out the entry of a
/// node that stopped; a running node rewrites its entry every `refreshInterval`, well within the TTL.
public enum SchemaRegistryBucket {
    public static let name = "harmonylite-schema-registry"
    public static let description = "HarmonyLite schema registry for cluster-wide schema visibility"
    public static let ttlSeconds: Int64 = 300
    public static let keyPrefix = "node-"

    public static func key(nodeID: UInt64) -> String { keyPrefix + String(nodeID) }

    /// The node id a key names, or nil when the key is not a node's.
    public static func nodeID(key: String) -> UInt64? {
        guard key.hasPrefix(keyPrefix) else { return nil }
        return UInt64(key.dropFirst(keyPrefix.count))
    }
}
