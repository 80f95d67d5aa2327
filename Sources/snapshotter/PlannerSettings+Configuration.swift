import HarmonyConfig
import SnapshotPlanner

extension PlannerSettings {
    init(_ config: Configuration) {
        self.init(
            enabled: config.snapshot.enabled,
            replicate: config.replicate,
            publish: config.publish,
            storeName: config.snapshot.store,
            streams: (1...config.replicationLog.shards).map { config.shardStreamName($0) },
            leaseTTL: Double(config.snapshot.leaderTTL > 0 ? config.snapshot.leaderTTL : 30000) / 1000,
            interval: config.snapshot.interval > 0 ? Double(config.snapshot.interval) / 1000 : nil,
            maxEntries: config.replicationLog.maxEntries
        )
    }
}
