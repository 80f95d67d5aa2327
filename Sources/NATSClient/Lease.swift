import CNats

#if canImport(Glibc)
import Glibc
#endif

/// A lease held as one key in a NATS KV bucket whose TTL is the lease's: the holder renews it with a
/// compare-and-set on its own revision; when it stops renewing (crash, partition) the key ages out and
/// anyone may create it again. Which node holds it is decided by JetStream alone — no wall clocks are
/// compared (HarmonyLite compared the holder's timestamp with the contender's clock).
public final class Lease {
    public let key: String
    private let store: OpaquePointer
    private var revision: UInt64?

    public init(connection: NATSConnection, bucket: String, key: String, ttlMilliseconds: Int64, replicas: Int) throws(NATSError) {
        self.key = key
        var kv: OpaquePointer?
        var status = js_KeyValue(&kv, connection.jetStream, bucket)
        if status == NATS_NOT_FOUND {
            var config = kvConfig()
            kvConfig_Init(&config)
            let name = strdup(bucket)
            defer { free(name) }
            config.Bucket = UnsafePointer(name)
            config.History = 1
            config.TTL = ttlMilliseconds * 1_000_000
            config.StorageType = js_FileStorage
            config.Replicas = Int32(replicas)
            status = js_CreateKeyValue(&kv, connection.jetStream, &config)
        }
        guard status == NATS_OK, let kv else { throw NATSError(operation: "lease bucket \(bucket)", status: status) }
        store = kv
    }

    deinit { kvStore_Destroy(store) }

    /// Whether the last renewal or acquisition succeeded (a renewal that was not answered leaves it set).
    public var isHeld: Bool { revision != nil }

    /// Takes the lease if free, renews it if ours; false when another holder has it. `holder` is stored as
    /// the value, for people looking at the bucket.
    @discardableResult
    public func acquireOrRenew(holder: String) throws(NATSError) -> Bool {
        var newRevision: UInt64 = 0
        let bytes = Array(holder.utf8)
        if let revision {
            let status = kvStore_Update(&newRevision, store, key, bytes, Int32(bytes.count), revision)
            if status == NATS_OK {
                self.revision = newRevision
                return true
            }
            // Not answered (a JetStream leader election, say): still ours if nobody took it meanwhile, which
            // the next renewal's compare-and-set will tell. Refused: someone took it after ours aged out.
            if status != NATS_ERR { throw NATSError(operation: "renew lease \(key)", status: status) }
            self.revision = nil
        }
        let status = kvStore_Create(&newRevision, store, key, bytes, Int32(bytes.count))
        if status == NATS_OK {
            revision = newRevision
            return true
        }
        if status == NATS_ERR { return false }  // the key exists: held by someone else
        throw NATSError(operation: "take lease \(key)", status: status)
    }

    /// Gives the lease up at once (on shutdown), so another node need not wait for the TTL.
    public func release() {
        guard revision != nil else { return }
        revision = nil
        kvStore_Delete(store, key)
    }
}
