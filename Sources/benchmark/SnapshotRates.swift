import ChangeLog
import Foundation
import NATSClient
import SQLiteKit
import Snapshots

/// Snapshot rates on the `nats` store, for a database of `megabytes` (1 KiB random rows, triggers installed):
/// save (`VACUUM INTO`, strip, SHA-256), upload, download, restore (verify, prepare, backup API into a live
/// database). The same procedures the snapshotter runs.
enum SnapshotRates {
    /// Snapshots are signed: any fixed key does for a measurement.
    static let benchmarkKey = SnapshotSigningKey(bytes: Array(repeating: 7, count: 32))
    struct Step {
        var name: String
        var seconds: Double
    }

    static func measure(directory: String, megabytes: Int) throws -> (bytes: Int64, steps: [Step]) {
        let source = directory + "/snapshot-source.db"
        let target = directory + "/snapshot-target.db"
        for path in [source, target] {
            try? FileManager.default.removeItem(atPath: path)
            try sqliteShell(path, "PRAGMA journal_mode=WAL; CREATE TABLE blobs(id INTEGER PRIMARY KEY, payload BLOB);")
        }
        let (database, _) = try ChangeLogInstaller.open(source, node: 1)
        // Rows written with the triggers off (as if replicated long ago): the benchmark measures snapshots,
        // not capture.
        try database.execute("DROP TRIGGER IF EXISTS \(ChangeLogSchema.trigger(of: "blobs", "insert"))")
        try database.execute(
            """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(megabytes * 1024))
            INSERT INTO blobs(payload) SELECT randomblob(1000) FROM n
            """)
        _ = try ChangeLogInstaller.open(target, node: 2)

        let server = try StandaloneNATS(storeDirectory: directory + "/js-snapshots")
        defer { server.stop() }
        let store = try NATSSnapshotStore(connection: try server.connect(), bucket: "benchmark-snapshots", replicas: 1)
        let (metadata, saving) = try SnapshotTransfers.save(database: source, nodeID: 1, store: store, key: Self.benchmarkKey) { _ in }
        guard let (_, _, restoring) = try SnapshotTransfers.restore(into: target, nodeID: 2, store: store, key: Self.benchmarkKey, say: { _ in }) else {
            throw BenchmarkError("the uploaded snapshot is not in the store")
        }
        let rows = try SQLiteDatabase(existingPath: target).rows("SELECT count(*) FROM blobs").first?.first ?? nil
        guard rows == String(megabytes * 1024) else { throw BenchmarkError("the restored database has \(rows ?? "no") rows, not \(megabytes * 1024)") }
        return (
            metadata.size,
            [
                Step(name: "save (VACUUM INTO, strip, SHA-256)", seconds: saving.local),
                Step(name: "upload to the nats object store", seconds: saving.transfer),
                Step(name: "download from the nats object store", seconds: restoring.transfer),
                Step(name: "restore (verify, prepare, backup API)", seconds: restoring.local),
            ]
        )
    }
}
