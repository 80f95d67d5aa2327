import ChangeEvents
import ChangeLog
import Foundation
import HarmonyConfig
import Logs
import SnapshotPlanner
import Snapshots

/// The two background jobs: a restore into the live database, and a save.
enum SnapshotJobs {
    /// `currentStreams`: each shard stream's identity now, so a stream created anew since the snapshot is
    /// consumed from its start.
    static func restore(_ config: Configuration, store: any SnapshotStore, key: SnapshotSigningKey, currentStreams: [String: UInt64]) -> BackgroundJob {
        nonisolated(unsafe) let store = store
        return BackgroundJob(name: "restore") { job in
            guard
                let (metadata, outcome, timing) = try SnapshotTransfers.restore(
                    into: config.dbPath, nodeID: config.nodeID, store: store, key: key,
                    acceptUnsigned: config.snapshot.acceptUnsigned,
                    currentStreams: currentStreams,
                    maxClockOffset: UInt64(config.maxClockOffset), say: job.say)
            else {
                return JobReport(summary: "no snapshot in the store yet", cursor: nil)
            }
            for (stream, check) in outcome.replacedStreams.sorted(by: { $0.key < $1.key }) {
                job.sayLoudly(
                    JobNote(
                        "a stream is not the one the snapshot's cursor belongs to: it was deleted and created again, or lost with its only "
                            + "server; consuming it from its start. Changes the old stream held past the snapshot's cursor are not on this node "
                            + "unless another node publishes them again",
                        ["stream": stream, "check": "\(check)", "snapshot_cursor": "\(metadata.cursor[stream] ?? 0)"]))
            }
            if !outcome.hadRowClocks {
                job.say(JobNote("the snapshot carries no row clocks (saved by an earlier version): its rows take the stamps of the changes that arrive next"))
            }
            for note in outcome.liveVersionNotes { job.sayLoudly(JobNote("live row versions not kept: the schemas differ", ["detail": note])) }
            if outcome.supersededLocalChanges > 0 {
                job.say(
                    JobNote(
                        "unpublished local changes lost to later versions of their rows in the snapshot (last-writer-wins)",
                        ["changes": "\(outcome.supersededLocalChanges)"]))
            }
            try SeqMapFile.write(outcome.cursor, streams: currentStreams, to: config.seqMapPath)
            let taken = LineLogHandler.rfc3339(unixMilliseconds: metadata.createdAt)
            let timings = "download \(String(format: "%.2f", timing.transfer)) s, restore \(String(format: "%.2f", timing.local)) s"
            return JobReport(
                summary: "from node \(metadata.nodeID), taken at \(taken) (\(ByteSize.text(metadata.size)), \(timings)), "
                    + "cursor \(describeCursor(outcome.cursor)); kept \(outcome.keptLocalChanges) unpublished local change(s) and "
                    + "\(outcome.keptLiveVersions) live row version(s) later than the snapshot's (of \(outcome.comparedLiveVersions) compared)",
                cursor: outcome.cursor,
                snapshot: (metadata.createdAt, metadata.size, timing.transfer + timing.local),
                fields: [
                    "from_node": "\(metadata.nodeID)", "taken_at": taken, "bytes": "\(metadata.size)", "download_s": JobNote.seconds(timing.transfer),
                    "restore_s": JobNote.seconds(timing.local), "cursor": describeCursor(outcome.cursor), "kept_local_changes": "\(outcome.keptLocalChanges)",
                    "kept_live_versions": "\(outcome.keptLiveVersions)", "compared_live_versions": "\(outcome.comparedLiveVersions)",
                ])
        }
    }

    static func save(_ config: Configuration, store: any SnapshotStore, key: SnapshotSigningKey) -> BackgroundJob {
        nonisolated(unsafe) let store = store
        return BackgroundJob(name: "save") { job in
            let (metadata, timing) = try SnapshotTransfers.save(database: config.dbPath, nodeID: config.nodeID, store: store, key: key, say: job.say)
            let timings = "copy \(String(format: "%.2f", timing.local)) s, upload \(String(format: "%.2f", timing.transfer)) s"
            return JobReport(
                summary: "\(ByteSize.text(metadata.size)) (\(timings)), cursor \(describeCursor(metadata.cursor))", cursor: metadata.cursor,
                snapshot: (metadata.createdAt, metadata.size, timing.transfer + timing.local),
                fields: [
                    "bytes": "\(metadata.size)", "copy_s": JobNote.seconds(timing.local), "upload_s": JobNote.seconds(timing.transfer),
                    "cursor": describeCursor(metadata.cursor),
                ])
        }
    }
}
