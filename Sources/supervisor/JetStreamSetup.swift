import Foundation
import HarmonyConfig
import Logging
import NATSClient
import NodeNATS
import SchemaRegistry
import Synchronization

/// The embedded server's set-up: the shard streams, the schema registry and snapshot lease buckets and the
/// `nats` snapshot store's object store are created (and upgraded, `replication_log.update_existing`) by the
/// administrator, a user derived from the cluster secret that no worker holds. The node's own user (the
/// broker's, the snapshotter's) may only use them (`EmbeddedServerConfig.allowedSubjects`), so a leaked
/// node password cannot reconfigure, purge or delete them. Runs on its own thread from the embedded
/// server's first readiness on: until everything exists (the first node of an R3 cluster waits for its
/// peers; the workers meanwhile wait for JetStream as they do for a server that is not answering yet),
/// then checks again every `recheckSeconds` (a stream deleted or made again by hand, without the per-node
/// subjects, is repaired: the broker's own user cannot).
final class JetStreamSetup: Sendable {
    static let recheckSeconds = 5.0
    private let running = Atomic<Bool>(false)
    private let url = Mutex<[String]>([])
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    /// Starts the set-up thread unless it runs; else tells it the server's current URL.
    /// `config`: with the administrator's credentials and the server's URL.
    func start(_ config: Configuration) {
        url.withLock { $0 = config.natsClientURLs }
        guard config.nats.isEmbedded, let credentials = config.embeddedCredentials, !credentials.adminUser.isEmpty,
            !running.exchange(true, ordering: .relaxed)
        else { return }
        let thread = Thread { [self] in
            let started = Date()
            var lastWarning: Date?
            var connection: NATSConnection?
            var done = false
            while true {
                do {
                    var current = config
                    current.natsClientURLs = url.withLock { $0 }
                    if connection == nil { connection = try Self.connect(current, credentials: credentials) }
                    try setUp(current, on: connection!)
                    if !done {
                        logger.info(
                            "JetStream set up by the administrator", metadata: ["seconds": "\(String(format: "%.2f", Date().timeIntervalSince(started)))"])
                        done = true
                    }
                    lastWarning = nil
                    Thread.sleep(forTimeInterval: Self.recheckSeconds)
                } catch {
                    connection = nil
                    if lastWarning.map({ Date().timeIntervalSince($0) >= 30 }) ?? true {
                        logger.warning("cannot set up JetStream yet; retrying", metadata: ["error": "\(error)"])
                        lastWarning = Date()
                    }
                    Thread.sleep(forTimeInterval: 1)
                }
            }
        }
        thread.name = "jetstream set-up"
        thread.start()
    }

    private static func connect(_ config: Configuration, credentials: EmbeddedCredentials) throws -> NATSConnection {
        var settings = ConnectionSettings(urls: config.natsClientURLs, name: config.nodeName + "-setup")
        settings.userName = credentials.adminUser
        settings.userPassword = credentials.adminPassword
        settings.ignoreDiscoveredServers = true
        settings.jetStreamWaitMilliseconds = 5000
        return try NATSConnection.connect(settings)
    }

    private func setUp(_ config: Configuration, on connection: NATSConnection) throws {
        for shard in 1...max(1, config.replicationLog.shards) {
            let spec = StreamSpecification.changeStream(config, shard: shard)
            let ensured = try connection.ensureStream(spec, updateExisting: config.replicationLog.updateExisting)
            // In a region, after the shard stream (which gives up the subjects it may have bound before).
            if let regional = StreamSpecification.regionalStream(config, shard: shard) {
                try connection.ensureStream(regional, updateExisting: config.replicationLog.updateExisting)
            }
            if !ensured.addedSubjects.isEmpty {
                logger.notice(
                    "added the per-node subjects to an existing shard stream (publishers on its other subjects keep working)",
                    metadata: ["stream": "\(spec.name)", "added": "\(ensured.addedSubjects.joined(separator: ", "))"])
            }
        }
        let replicas = config.replicationLog.effectiveReplicas
        _ = try KeyValueBucket.openOrCreate(
            connection: connection, name: SchemaRegistryBucket.name,
            creation: .init(description: SchemaRegistryBucket.description, ttlSeconds: SchemaRegistryBucket.ttlSeconds, replicas: replicas))
        _ = try KeyValueBucket.openOrCreate(
            connection: connection, name: config.nodeClaimsBucket,
            creation: .init(description: "HarmonyLite: one running node per node id", ttlSeconds: Configuration.nodeClaimTTLSeconds, replicas: replicas))
        _ = try Lease(
            connection: connection, bucket: config.snapshotLeaseBucket, key: Configuration.snapshotLeaseKey,
            ttlMilliseconds: Int64(config.snapshotLeaseTTLSeconds * 1000), replicas: replicas)
        if config.snapshot.store == "nats" {
            _ = try ObjectStoreBucket(connection: connection, bucket: config.snapshotObjectBucket, replicas: config.snapshot.nats.replicas)
        }
    }
}
