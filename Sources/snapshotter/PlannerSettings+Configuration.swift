import HarmonyConfig
import SnapshotPlanner

extension PlannerSettings {
    init(_ config: Configuration) {
        self.init(
            enabled: config.snapshot.enabled,
            replicate: config.replicate,
            publish: config.publish,
            storeName: config.snapshot.store,
            streams: config.changeStreamNames,
            leaseTTL: config.snapshotLeaseTTLSeconds,
            interval: config.snapshot.interval > 0 ? Double(config.snapshot.interval) / 1000 : nil,
            maxEntries: config.replicationLog.maxEntries
        )
    }
}
