import CNats

#if canImport(Glibc)
import Glibc
#endif

/// A NATS KV bucket: put a key, list the keys, read a value (bounded: values are untrusted bytes).
public final class KeyValueBucket {
    public let name: String
    private let store: OpaquePointer

    /// The bucket, or nil when it does not exist.
    public static func existing(connection: NATSConnection, name: String) throws(NATSError) -> KeyValueBucket? {
        var kv: OpaquePointer?
        let status = js_KeyValue(&kv, connection.jetStream, name)
        if status == NATS_NOT_FOUND { return nil }
        guard status == NATS_OK, let kv else { throw NATSError(operation: "KV bucket \(name)", status: status) }
        return KeyValueBucket(name: name, store: kv)
    }

    /// The bucket, created as `creation` says when missing.
    public static func openOrCreate(connection: NATSConnection, name: String, creation: Creation) throws(NATSError) -> KeyValueBucket {
        if let bucket = try existing(connection: connection, name: name) { return bucket }
        var config = kvConfig()
        kvConfig_Init(&config)
        let bucketName = strdup(name)
        let description = strdup(creation.description)
        defer { free(bucketName); free(description) }
        config.Bucket = UnsafePointer(bucketName)
        config.Description = UnsafePointer(description)
        config.History = 1
        config.TTL = creation.ttlSeconds * 1_000_000_000
        config.StorageType = js_FileStorage
        config.Replicas = Int32(creation.replicas)
        var kv: OpaquePointer?
        let status = js_CreateKeyValue(&kv, connection.jetStream, &config)
        guard status == NATS_OK, let kv else { throw NATSError(operation: "create KV bucket \(name)", status: status) }
        return KeyValueBucket(name: name, store: kv)
    }

    /// How a missing bucket is made.
    public struct Creation: Sendable {
        public var description: String
        public var ttlSeconds: Int64
        public var replicas: Int

        public init(description: String, ttlSeconds: Int64, replicas: Int) {
            self.description = description
            self.ttlSeconds = ttlSeconds
            self.replicas = replicas
        }
    }

    private init(name: String, store: OpaquePointer) {
        self.name = name
        self.store = store
    }

    deinit { kvStore_Destroy(store) }

    /// Writes the key; its new revision.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8]) throws(NATSError) -> UInt64 {
        var revision: UInt64 = 0
        let status = kvStore_Put(&revision, store, key, value, Int32(value.count))
        guard status == NATS_OK else { throw NATSError(operation: "KV put \(name)/\(key)", status: status) }
        return revision
    }

    /// The bucket's keys (an empty bucket has none).
    public func keys() throws(NATSError) -> [String] {
        var list = kvKeysList()
        let status = kvStore_Keys(&list, store, nil)
        if status == NATS_NOT_FOUND { return [] }
        guard status == NATS_OK else { throw NATSError(operation: "KV keys \(name)", status: status) }
        defer { kvKeysList_Destroy(&list) }
        return (0..<Int(list.Count)).compactMap { list.Keys[$0].map { String(cString: $0) } }
    }

    /// The key's value; nil when the key is gone (deleted or aged out since it was listed).
    public func value(_ key: String) throws(NATSError) -> [UInt8]? { try entry(key, limit: .max)?.value }

    /// The key's value (at most `limit` bytes; a longer one is read as empty) and revision; nil when absent.
    public func entry(_ key: String, limit: Int = 4096) throws(NATSError) -> (value: [UInt8], revision: UInt64)? {
        var entry: OpaquePointer?
        let status = kvStore_Get(&entry, store, key)
        if status == NATS_NOT_FOUND { return nil }
        guard status == NATS_OK, let entry else { throw NATSError(operation: "KV get \(name)/\(key)", status: status) }
        defer { kvEntry_Destroy(entry) }
        let count = Int(kvEntry_ValueLen(entry))
        let revision = kvEntry_Revision(entry)
        guard count > 0, count <= limit, let bytes = kvEntry_Value(entry) else { return ([], revision) }
        return (Array(UnsafeRawBufferPointer(start: bytes, count: count)), revision)
    }

    /// Creates the key only if it is absent; false when it exists.
    public func create(_ key: String, _ value: [UInt8]) throws(NATSError) -> Bool {
        var revision: UInt64 = 0
        let status = kvStore_Create(&revision, store, key, value, Int32(value.count))
        if status == NATS_ERR { return false }
        guard status == NATS_OK else { throw NATSError(operation: "KV create \(name)/\(key)", status: status) }
        return true
    }

    public func delete(_ key: String) throws(NATSError) {
        let status = kvStore_Delete(store, key)
        guard status == NATS_OK else { throw NATSError(operation: "KV delete \(name)/\(key)", status: status) }
    }
}
