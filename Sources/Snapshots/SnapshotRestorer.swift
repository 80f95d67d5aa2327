import ChangeEvents
import ChangeLog
import Foundation
import SQLiteKit
import SystemCalls

/// Brings a downloaded snapshot into the live database.
///
/// The file is verified first (size, SHA-256, SQLite's quick check): a snapshot that fails any of them is
/// refused and the database is not touched. Then the copy is prepared completely before the live database
/// sees it: brought to the live database's page size, change logs and triggers installed over the row
/// clocks it carries, the snapshot's cursor stored (for each stream it still belongs to; a stream created
/// anew since is consumed from its start), this node's changes that were never published written back
/// by last-writer-wins against the snapshot's clocks and queued again, and every other row version the live
/// database holds that is later than the snapshot's (`LiveVersionMerge`: this node's published writes and
/// other nodes' applied ones, which the streams may no longer hold) kept, by the same order. Only then does
/// the backup API replace the live content in one step. What the streams still hold past the snapshot's
/// cursor comes again, and is applied by stamp like any other change (what the merge kept is superseded).
public enum SnapshotRestorer {
    public struct Outcome: Sendable {
        public var cursor: [String: UInt64]
        /// Local changes that had not been published, carried over (they won against the snapshot's rows).
        public var keptLocalChanges: Int
        /// Local changes that had not been published and that the snapshot holds a later version of.
        public var supersededLocalChanges: Int
        /// Streams whose identity differs from the one the snapshot's cursor belongs to: consumed from their
        /// start, and what the old stream held past the snapshot's cursor is not in this node's database.
        public var replacedStreams: [String: StreamIdentityCheck]
        /// Whether the snapshot carried row clocks (format 2 and later).
        public var hadRowClocks: Bool
        /// Row versions of the live database later than the snapshot's (published or applied writes,
        /// deletes included, and unpublished ones, which `keptLocalChanges` counts too) that the restored
        /// content keeps.
        public var keptLiveVersions: Int = 0
        /// Live row clocks compared with the snapshot's.
        public var comparedLiveVersions: Int = 0
        /// Live versions not kept because the schemas differ (a table or column the snapshot lacks), counted.
        public var liveVersionNotes: [String] = []
    }

    /// Opens a downloaded snapshot defensively (`SQLiteDatabase(untrustedPath:)`). A schema SQLite refuses to
    /// read with `trusted_schema = OFF` — an index or generated column on `json_extract()` and the like, which
    /// SQLite 3.40 does not mark innocuous — is read with it on: the file's signature and checksum are verified
    /// before, and its triggers and views the live database lacks are dropped before anything runs
    /// (`SnapshotSchemaGuard`). Before, such a schema made every restore fail and the node stop.
    static func openSnapshot(_ filePath: String) throws(SQLiteError) -> SQLiteDatabase {
        do {
            let database = try SQLiteDatabase(untrustedPath: filePath)
            // The schema is read at the first statement that needs it, not at open: read it now.
            _ = try database.scalarInteger("SELECT count(*) FROM sqlite_schema")
            return database
        } catch  where error.message.contains("unsafe use of") {
            return try SQLiteDatabase(untrustedPath: filePath, trustingSchema: true)
        }
    }

    /// - Parameter currentStreams: each shard stream's identity now (JetStream's creation time); empty when
    ///   unknown, and the snapshot's cursor is then taken as it is.
    /// - Parameter clockBound: when set, a snapshot whose row clocks hold a stamp beyond this node's clock plus
    ///   the bound is refused before the live database changes (`SnapshotStampCheck`).
    /// - Parameter say: progress lines while the snapshot is written into the live database (every 2 s).
    public static func restore(
        _ filePath: String, metadata: SnapshotMetadata, into databasePath: String, nodeID: UInt64,
        currentStreams: [String: UInt64] = [:], clockBound: ClockBound? = nil, say: (JobNote) -> Void = { _ in }
    ) throws -> Outcome {
        try verify(filePath, metadata: metadata)
        let (live, liveInstallation) = try ChangeLogInstaller.open(databasePath, node: nodeID)
        let prepared = try openSnapshot(filePath)
        try prepared.execute("PRAGMA journal_mode=DELETE")
        // The backup API cannot change the page size of a database in WAL mode: the copy takes the live one's.
        let pageSize = try live.scalarInteger("PRAGMA page_size")
        if try prepared.scalarInteger("PRAGMA page_size") != pageSize {
            try prepared.execute("PRAGMA page_size=\(pageSize)")
            try prepared.execute("VACUUM")
        }
        let dropped = try SnapshotSchemaGuard.confine(prepared, toWhat: live)
        let installation = try ChangeLogInstaller.install(in: prepared, node: nodeID)
        if let clockBound {
            try SnapshotStampCheck.verify(prepared, tables: installation.catalog.replicated.map(\.name), bound: clockBound, now: ClockBound.systemNow())
        }
        let applier = try ChangeApplier(database: prepared, catalog: installation.catalog)
        let (cursor, replaced) = cursorForCurrentStreams(metadata, currentStreams: currentStreams)
        // The identities the cursor now belongs to: the streams as they are, else as the snapshot recorded them.
        _ = try applier.apply([], cursor: cursor, streams: (metadata.streams ?? [:]).merging(currentStreams) { $1 })
        // Every live row clock complete (a local write's stamp is written after its transaction), then the
        // live versions later than the snapshot's kept (capturer and applier are stopped: from here on only
        // the application writes, and what it writes is unpublished, read below).
        _ = try live.transaction { () throws(SQLiteError) -> Int in try StampMaterializer(database: live).materialize() }
        let later = try LiveVersionMerge.laterVersions(
            live: databasePath, liveTables: liveInstallation.catalog.replicated,
            prepared: prepared, snapshotTables: installation.catalog.replicated)
        var notes = dropped + later.notes
        let merged = try LiveVersionMerge.keep(later.events, applier: applier, notes: &notes)
        // What is still unpublished is read under the live database's write lock, held until its content is
        // replaced: the application may be writing, and a commit after the read would be lost (the fault
        // suite's gap restore under write load lost one). Read through a connection of its own: the live
        // one is the backup's. The merge may have written an unpublished version already: `replayLocal`
        // queues it all the same.
        let reader = try SQLiteDatabase(existingPath: databasePath)
        var pending: [ChangeEvent] = []
        var kept = 0
        var progress = TransferProgress("writing the snapshot into the live database", clock: monotonicSeconds)
        try live.replaceContent(
            with: prepared,
            whileLocked: {
                pending = try ChangeReader(database: reader, installation: liveInstallation)
                    .pending(after: try PublishWatermark.read(reader), limit: Int.max).events
                kept = try applier.replayLocal(pending, tableIDs: installation.tableIDs)
            },
            progress: { copied, total in
                if let line = progress.line(done: copied * Int64(pageSize), total: total * Int64(pageSize)) { say(line) }
            })
        try live.execute("PRAGMA journal_mode=WAL")
        return Outcome(
            cursor: cursor, keptLocalChanges: kept, supersededLocalChanges: pending.count - kept,
            replacedStreams: replaced, hadRowClocks: metadata.format >= 2,
            keptLiveVersions: merged, comparedLiveVersions: later.compared, liveVersionNotes: notes)
    }

    /// The snapshot's cursor for the streams as they are now: a stream whose identity is not the one the
    /// cursor was read in starts from 0 (its own beginning).
    static func cursorForCurrentStreams(
        _ metadata: SnapshotMetadata, currentStreams: [String: UInt64]
    )
        -> (cursor: [String: UInt64], replaced: [String: StreamIdentityCheck])
    {
        var cursor = metadata.cursor
        var replaced: [String: StreamIdentityCheck] = [:]
        for (stream, current) in currentStreams {
            let check = StreamIdentityCheck.compare(recorded: metadata.streams?[stream], current: current)
            if check != .same, cursor[stream] != nil {
                cursor[stream] = 0
                replaced[stream] = check
            }
        }
        return (cursor, replaced)
    }

    /// Size, checksum and SQLite's own check of the file; throws saying which failed.
    public static func verify(_ filePath: String, metadata: SnapshotMetadata) throws {
        let (sha256, size) = try FileDigest.sha256(of: filePath)
        guard size == metadata.size else {
            throw SnapshotRefusal(.contentMismatch, "the snapshot is \(size) bytes, its metadata says \(metadata.size): refused, the database is unchanged")
        }
        guard sha256 == metadata.sha256 else {
            throw SnapshotRefusal(
                .contentMismatch, "the snapshot's SHA-256 is \(sha256), its metadata says \(metadata.sha256): refused, the database is unchanged")
        }
        let check = try openSnapshot(filePath).rows("PRAGMA quick_check").compactMap { $0.first ?? nil }
        guard check == ["ok"] else {
            throw SnapshotError(
                .refused, "the snapshot fails SQLite's quick check (\(check.prefix(3).joined(separator: "; "))): refused, the database is unchanged")
        }
    }
}
