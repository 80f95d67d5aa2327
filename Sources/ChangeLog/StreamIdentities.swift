import SQLiteKit

/// Which stream each cursor entry belongs to: JetStream's creation time of the stream (ns since 1970), kept
/// in `__harmonylite___meta` as `stream:<name>` next to `cursor:<name>`. A stream deleted and created again
/// (by hand, or by the broker after the only server of an R1 stream lost it) has the same name, starts
/// over at sequence 1, and a cursor of the old one would silently skip its first messages.
public enum StreamIdentities {
    static let keyPrefix = "stream:"

    /// The identities stored with the cursor (none when never recorded: a database of an earlier version).
    public static func read(in database: SQLiteDatabase) throws(SQLiteError) -> [String: UInt64] {
        var identities: [String: UInt64] = [:]
        guard try database.scalarInteger("SELECT count(*) FROM sqlite_master WHERE name = '\(ChangeLogSchema.meta)'") > 0 else { return identities }
        let rows = try database.prepare(
            "SELECT key, value FROM \(ChangeLogSchema.quote(ChangeLogSchema.meta)) WHERE substr(key, 1, \(keyPrefix.utf8.count)) = '\(keyPrefix)'"
        ).all()
        for row in rows {
            if case .text(let key) = row[0], case .integer(let value) = row[1] {
                identities[String(decoding: key.dropFirst(keyPrefix.utf8.count), as: UTF8.self)] = UInt64(bitPattern: value)
            }
        }
        return identities
    }

    /// Stores `identities` (inside the caller's transaction, if any).
    public static func write(_ identities: [String: UInt64], in database: SQLiteDatabase) throws(SQLiteError) {
        guard !identities.isEmpty else { return }
        let statement = try database.prepare("INSERT OR REPLACE INTO \(ChangeLogSchema.quote(ChangeLogSchema.meta)) (key, value) VALUES (?, ?)")
        for (stream, created) in identities.sorted(by: { $0.key < $1.key }) {
            try statement.run([.text(keyPrefix + stream), .integer(Int64(bitPattern: created))])
        }
    }
}
