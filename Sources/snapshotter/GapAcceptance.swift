import ChangeEvents
import ChangeLog
import HarmonyConfig
import Logging
import NATSClient
import SQLiteKit
import Snapshots
import WorkerRuntime

/// After a restore (or when the store had none), a stream that still starts past the node's cursor cannot
/// be completed from anywhere: the missing changes are lost on this node. Said loudly, and the cursor moved
/// to the stream's start — the one place a gap is ever accepted — so the applier, which stops at any gap,
/// can go on. (The lease holder saves after every half `max_entries` messages, so this takes a cluster whose
/// snapshots could not be saved, or `snapshot.enabled = false` on the publishers.) Likewise a stream that is
/// still not the one the cursor belongs to (deleted and created again, and no snapshot to restore): it is
/// consumed from its start, loudly.
enum GapAcceptance {
    /// What a stream holds against the node's cursor.
    enum Finding {
        /// Not the stream the cursor belongs to: consumed from its start.
        case replaced(stream: String, position: UInt64, created: UInt64)
        /// Starts past the cursor: messages `from…through` are in no stream.
        case missing(stream: String, from: UInt64, through: UInt64)
    }

    /// Moves the cursor past what nothing holds. With `acceptMissing` false, changes no stream holds any
    /// more are not accepted: nothing is written, and what is missing is returned (the planner waits for a
    /// snapshot covering it); nil when nothing is.
    @discardableResult
    static func acceptGaps(_ config: Configuration, streams: [String], connection: NATSConnection, logger: Logger, acceptMissing: Bool = true) throws -> String?
    {
        let (database, installation): (SQLiteDatabase, ChangeLogInstallation)
        do {
            (database, installation) = try ChangeLogInstaller.open(config.dbPath, node: config.nodeID, upstreamSeqMap: config.seqMapPath)
        } catch {
            throw WorkerExit.failed(ChangeLogInstaller.cannotStart(error, path: config.dbPath))
        }
        let applier = try ChangeApplier(database: database, catalog: installation.catalog)
        var cursor = try applier.storedCursor()
        var identities = try StreamIdentities.read(in: database)
        let findings: [Finding] = streams.compactMap { stream in
            guard let state = try? connection.streamState(stream) else { return nil }
            let position = cursor[stream] ?? 0
            switch StreamPosition.check(
                position: position, recorded: identities[stream], current: state.created, firstSequence: state.messages > 0 ? state.firstSequence : nil)
            {
            case .ok: return nil
            case .replaced: return .replaced(stream: stream, position: position, created: state.created)
            case .missing(let missing): return .missing(stream: stream, from: missing.lowerBound, through: missing.upperBound)
            }
        }
        let missing = findings.compactMap { if case .missing(let stream, let from, let through) = $0 { "\(stream) messages \(from)…\(through)" } else { nil } }
        if !acceptMissing, !missing.isEmpty { return missing.joined(separator: ", ") }
        guard !findings.isEmpty else { return nil }
        for finding in findings {
            switch finding {
            case .replaced(let stream, let position, let created):
                logger.error(
                    "the shard stream is not the one this node's cursor belongs to (deleted and created again, or lost with its only server) and no snapshot brought the node past it: consuming it from its start; what the old stream held past the cursor is not on this node",
                    metadata: ["stream": "\(stream)", "cursor": "\(position)"])
                cursor[stream] = 0
                identities[stream] = created
            case .missing(let stream, let from, let through):
                logger.error(
                    "no snapshot covers the messages the shard stream no longer holds: those changes are missing on this node; consuming from its first message (raise replication_log.max_entries, keep snapshots enabled on the nodes that publish)",
                    metadata: ["stream": "\(stream)", "missing": "\(from)…\(through)", "from": "\(through + 1)"])
                cursor[stream] = through
            }
        }
        _ = try applier.apply([], cursor: cursor, streams: identities)
        try SeqMapFile.write(cursor, streams: identities, to: config.seqMapPath)
        return nil
    }
}
