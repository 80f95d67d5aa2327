import ChangeEvents
import ChangeLog
import Foundation
import SQLiteKit

/// The bound on time for snapshots: a snapshot whose row clocks hold a stamp beyond `now + max_clock_offset`
/// is refused before the live database is touched. Applied, such a stamp would pin its row: no write made
/// anywhere before that time could replace it (docs/clocks.md). One query per row-clock table.
public enum SnapshotStampCheck {
    /// The newest stamp (compared unsigned) of each table's row clock in `database`, for the tables that
    /// have one and hold rows.
    public static func newestStamps(in database: SQLiteDatabase, tables: [String]) throws(SQLiteError) -> [(table: String, stamp: UInt64)] {
        let q = HarmonyLiteObjects.quoted
        let stamp = q(ChangeLogSchema.stampColumn)
        var found: [(table: String, stamp: UInt64)] = []
        for table in tables {
            let clock = ChangeLogSchema.changeLog(of: table)
            let exists = try database.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?").all([.text(Array(clock.utf8))])
            guard !exists.isEmpty else { continue }
            // Stamps are unsigned 64-bit numbers stored as their signed bit patterns: the negative ones are the largest.
            let rows = try database.prepare("SELECT coalesce(max(\(stamp)) FILTER (WHERE \(stamp) < 0), max(\(stamp))) FROM \(q(clock))").all()
            if case .integer(let value) = rows.first?.first { found.append((table, UInt64(bitPattern: value))) }
        }
        return found
    }

    /// The first table whose newest stamp lies beyond the bound at `now` (ms since 1970), as the refusal to
    /// give; nil when every stamp is within it. Pure.
    public static func refusal(_ newest: [(table: String, stamp: UInt64)], bound: ClockBound, now: Int64) -> SnapshotRefusal? {
        for (table, stamp) in newest {
            guard case .ahead(let ahead) = bound.check(stamp: stamp, now: now) else { continue }
            return SnapshotRefusal(
                .stampBeyondClockBound,
                "the snapshot's table \(table) holds a row stamped \(time(of: stamp)) (stamp \(stamp)), \(ahead) ms ahead of this node's clock, "
                    + "beyond max_clock_offset (\(bound.maxOffsetMilliseconds) ms): refused, the database is unchanged "
                    + "(a stamp from the future would pin its row against every later write; see docs/clocks.md)")
        }
        return nil
    }

    /// Throws the refusal when a row clock of `database` holds a stamp beyond the bound at `now`.
    public static func verify(_ database: SQLiteDatabase, tables: [String], bound: ClockBound, now: Int64) throws {
        if let refusal = refusal(try newestStamps(in: database, tables: tables), bound: bound, now: now) { throw refusal }
    }

    /// A stamp's time in RFC 3339, UTC, with milliseconds.
    static func time(of stamp: UInt64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: Double(ClockBound.milliseconds(of: stamp)) / 1000))
    }
}
