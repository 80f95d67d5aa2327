import ChangeLog
import HarmonyConfig
import Logging
import NATSClient
import Snapshots

/// After a restore (or when the store had none), a stream that still starts past the node's cursor cannot
/// be completed from anywhere: the missing changes are lost on this node. Said loudly, and the cursor moved
/// to the stream's start — the one place a gap is ever accepted — so the applier, which stops at any gap,
/// can go on. (The lease holder saves after every half `max_entries` messages, so this takes a cluster whose
/// snapshots could not be saved, or `snapshot.enabled = false` on the publishers.) Likewise a stream that is
/// still not the one the cursor belongs to (deleted and created again, and no snapshot to restore): it is
/// consumed from its start, loudly.
enum GapAcceptance {
    /// Moves the cursor past what nothing holds. With `acceptMissing` false, changes no stream holds any
    /// more are not accepted: nothing is written, and what is missing is returned (the planner waits for a
    /// snapshot covering it); nil when nothing is.
    @discardableResult
    static func acceptGaps(_ config: Configuration, streams: [String], connection: NATSConnection, logger: Logger, acceptMissing: Bool = true) throws -> String? {
        let (database, installation) = try ChangeLogInstaller.open(config.dbPath, node: config.nodeID)
        let applier = try ChangeApplier(database: database, catalog: installation.catalog)
        var cursor = try applier.storedCursor()
        var identities = try StreamIdentities.read(in: database)
        var moved = false
        if !acceptMissing {
            let uncovered: [String] = streams.compactMap { stream in
                guard let state = try? connection.streamState(stream), state.messages > 0 else { return nil }
                let position = cursor[stream] ?? 0
                if position > 0, case .replaced = StreamIdentityCheck.compare(recorded: identities[stream], current: state.created) { return nil }
                guard state.firstSequence > position && state.firstSequence - position > 1 else { return nil }
                return "\(stream) messages \(position + 1)…\(state.firstSequence - 1)"
            }
            if !uncovered.isEmpty { return uncovered.joined(separator: ", ") }
        }
        for stream in streams {
            guard let state = try? connection.streamState(stream) else { continue }
            let position = cursor[stream] ?? 0
            if position > 0, case .replaced = StreamIdentityCheck.compare(recorded: identities[stream], current: state.created) {
                logger.error("\(stream) is not the stream this node's cursor (message \(position)) belongs to (deleted and created again, or lost with its only server) and no snapshot brought the node past it: consuming it from its start; what the old stream held past the cursor is not on this node")
                cursor[stream] = 0
                identities[stream] = state.created
                moved = true
                continue
            }
            guard state.messages > 0 else { continue }
            if state.firstSequence > position && state.firstSequence - position > 1 {
                logger.error("\(stream) starts at message \(state.firstSequence) and no snapshot covers messages \(position + 1)…\(state.firstSequence - 1): those changes are missing on this node; consuming from \(state.firstSequence) (raise replication_log.max_entries, keep snapshots enabled on the nodes that publish)")
                cursor[stream] = state.firstSequence - 1
                moved = true
            }
        }
        guard moved else { return nil }
        _ = try applier.apply([], cursor: cursor, streams: identities)
        try SeqMapFile.write(cursor, streams: identities, to: config.seqMapPath)
        return nil
    }
}
