import ChangeLog
import HarmonyConfig
import Logging
import NATSClient
import Snapshots

/// After a restore (or when the store had none), a stream that still starts past the node's cursor cannot
/// be completed from anywhere: the missing changes are lost on this node. Said loudly, and the cursor moved
/// to the stream's start — the one place a gap is ever accepted — so the applier, which stops at any gap,
/// can go on. (The lease holder saves after every half `max_entries` messages, so this takes a cluster whose
/// snapshots could not be saved, or `snapshot.enabled = false` on the publishers.)
enum GapAcceptance {
    static func acceptGaps(_ config: Configuration, streams: [String], connection: NATSConnection, logger: Logger) throws {
        let (database, installation) = try ChangeLogInstaller.open(config.dbPath, node: config.nodeID)
        let applier = try ChangeApplier(database: database, catalog: installation.catalog)
        var cursor = try applier.storedCursor()
        var moved = false
        for stream in streams {
            guard let state = try? connection.streamState(stream), state.messages > 0 else { continue }
            let position = cursor[stream] ?? 0
            if state.firstSequence > position && state.firstSequence - position > 1 {
                logger.error("\(stream) starts at message \(state.firstSequence) and no snapshot covers messages \(position + 1)…\(state.firstSequence - 1): those changes are missing on this node; consuming from \(state.firstSequence) (raise replication_log.max_entries, keep snapshots enabled on the nodes that publish)")
                cursor[stream] = state.firstSequence - 1
                moved = true
            }
        }
        guard moved else { return }
        _ = try applier.apply([], cursor: cursor)
        try SeqMapFile.write(cursor, to: config.seqMapPath)
    }
}
