import ChangeLog
import Foundation
import HarmonyConfig
import SnapshotPlanner
import Snapshots

/// The two background jobs: a restore into the live database, and a save.
enum SnapshotJobs {
    static func restore(_ config: Configuration, store: any SnapshotStore) -> BackgroundJob {
        nonisolated(unsafe) let store = store
        return BackgroundJob(name: "restore") { job in
            guard let (metadata, outcome, timing) = try SnapshotTransfers.restore(into: config.dbPath, nodeID: config.nodeID, store: store, say: job.say) else {
                return JobReport(line: "no snapshot in the store yet: continuing without one", cursor: nil)
            }
            try SeqMapFile.write(outcome.cursor, to: config.seqMapPath)
            return JobReport(line: "restored the snapshot of node \(metadata.nodeID) taken at \(metadata.createdAt) ms (\(metadata.size) bytes, "
                + "download \(String(format: "%.2f", timing.transfer)) s, restore \(String(format: "%.2f", timing.local)) s), "
                + "cursor \(outcome.cursor.sorted { $0.key < $1.key }); kept \(outcome.keptLocalChanges) unpublished local change(s)", cursor: outcome.cursor,
                snapshot: (metadata.createdAt, metadata.size, timing.transfer + timing.local))
        }
    }

    static func save(_ config: Configuration, store: any SnapshotStore) -> BackgroundJob {
        nonisolated(unsafe) let store = store
        return BackgroundJob(name: "save") { job in
            let (metadata, timing) = try SnapshotTransfers.save(database: config.dbPath, nodeID: config.nodeID, store: store, say: job.say)
            return JobReport(line: "saved a snapshot: \(metadata.size) bytes (copy \(String(format: "%.2f", timing.local)) s, upload \(String(format: "%.2f", timing.transfer)) s), "
                + "cursor \(metadata.cursor.sorted { $0.key < $1.key })", cursor: metadata.cursor,
                snapshot: (metadata.createdAt, metadata.size, timing.transfer + timing.local))
        }
    }
}
