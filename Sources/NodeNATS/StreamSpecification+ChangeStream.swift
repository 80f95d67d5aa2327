import NATSClient
import HarmonyConfig

extension StreamSpecification {
    /// Shard stream `shard`: `<stream_prefix>-<n>` on subjects `<subject_prefix>-<n>` (HarmonyLite's) and
    /// `<subject_prefix>-<n>.*` (each node's own, see `ChangeSubjects`), `replication_log.replicas` and
    /// `max_entries`. The broker checks it, the set-up (the administrator on the embedded server) makes it.
    public static func changeStream(_ config: Configuration, shard: UInt64) -> StreamSpecification {
        StreamSpecification(
            name: config.changeStreamName(shard: shard),
            subjects: ChangeSubjects.streamSubjects(prefix: config.nats.subjectPrefix, shard: shard),
            replicas: config.replicationLog.effectiveReplicas,
            maxMessages: config.replicationLog.maxEntries
        )
    }
}
