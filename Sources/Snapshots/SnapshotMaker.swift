import ChangeLog
import Foundation
import SQLiteKit

/// Makes a snapshot file from the live database: `VACUUM INTO` a consistent copy (one read transaction,
/// the application keeps writing), read the cursor the copy was taken at from its own meta table — so data
/// and cursor always match —, strip our tables and triggers, checksum it.
public enum SnapshotMaker {
    public static func make(from databasePath: String, into filePath: String, nodeID: UInt64) throws -> SnapshotMetadata {
        try? FileManager.default.removeItem(atPath: filePath)
        let source = try SQLiteDatabase(existingPath: databasePath)
        try source.prepare("VACUUM INTO ?").run([.text(Array(filePath.utf8))])
        let copy = try SQLiteDatabase(existingPath: filePath)
        // The copy's row clocks as of its queue: local writes not stamped yet are (`PendingStamps`).
        if try copy.scalarInteger("SELECT count(*) FROM sqlite_master WHERE name = '\(ChangeLogSchema.meta)'") > 0 {
            _ = try copy.transaction { () throws(SQLiteError) -> Int in try StampMaterializer(database: copy).materialize() }
        }
        let cursor = try ChangeApplier.storedCursor(in: copy)
        let schemaHash = SchemaHash.of(try TableCatalog.read(copy).replicated)
        try HarmonyLiteObjects.removeAll(from: copy)
        try copy.execute("VACUUM")
        try copy.execute("PRAGMA journal_mode=DELETE")
        let (sha256, size) = try FileDigest.sha256(of: filePath)
        return SnapshotMetadata(cursor: cursor, schemaHash: schemaHash, sha256: sha256, size: size, nodeID: nodeID,
                                createdAt: Int64(Date().timeIntervalSince1970 * 1000))
    }
}
