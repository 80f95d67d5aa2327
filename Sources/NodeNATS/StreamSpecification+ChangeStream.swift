import HarmonyConfig
import NATSClient

extension StreamSpecification {
    /// Shard stream `shard`: `<stream_prefix>-<n>` on subjects `<subject_prefix>-<n>` (HarmonyLite's) and
    /// `<subject_prefix>-<n>.*` (each node's own, see `ChangeSubjects`), `replication_log.replicas` and
    /// `max_entries`. The broker checks it, the set-up (the administrator on the embedded server) makes it.
    ///
    /// In a region (`nats.region`) it binds no subject: it sources this region's `regionalStream` and the
    /// other regions' (`nats.regions`, through their JetStream domains' API across the leaf connections).
    public static func changeStream(_ config: Configuration, shard: UInt64) -> StreamSpecification {
        var spec = StreamSpecification(
            name: config.changeStreamName(shard: shard),
            subjects: ChangeSubjects.streamSubjects(prefix: config.nats.subjectPrefix, shard: shard),
            replicas: config.replicationLog.effectiveReplicas,
            maxMessages: config.replicationLog.maxEntries
        )
        if !config.nats.region.isEmpty {
            spec.subjects = []
            spec.sources =
                [Source(name: config.regionalStreamName(shard: shard, region: config.nats.region))]
                + config.otherRegions.map { Source(name: config.regionalStreamName(shard: shard, region: $0), apiPrefix: "$JS.\($0).API") }
        }
        return spec
    }

    /// In a region: the stream that takes this region's publishes on shard `shard` (nil: no region).
    public static func regionalStream(_ config: Configuration, shard: UInt64) -> StreamSpecification? {
        guard !config.nats.region.isEmpty else { return nil }
        return StreamSpecification(
            name: config.regionalStreamName(shard: shard, region: config.nats.region),
            subjects: ChangeSubjects.streamSubjects(prefix: config.nats.subjectPrefix, shard: shard),
            replicas: config.replicationLog.effectiveReplicas,
            maxMessages: config.replicationLog.maxEntries
        )
    }
}
