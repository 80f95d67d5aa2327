import BinaryCoding
import SQLiteKit

/// One row change as it travels between nodes: the row's state after the change (all columns for an
/// upsert, the key for a delete), stamped with the row's hybrid logical clock and the node that wrote it.
/// Receivers apply it only if its (stamp, writer) is greater than what they hold for that row, so every
/// node converges to the same rows whatever the arrival order.
public struct ChangeEvent: Equatable, Sendable {
    public enum Operation: UInt8, Sendable {
        case upsert = 1
        case delete = 2
    }

    /// The origin's change-log id: unique and increasing per origin installation.
    public var changeID: Int64
    public var table: String
    public var operation: Operation
    /// HLC: milliseconds since 1970 in the high 48 bits, a counter in the low 16.
    public var stamp: UInt64
    /// The node that wrote this version of the row (the tie-break after the stamp).
    public var writer: UInt64
    /// Column names; the first `keyCount` are the primary key, in key order.
    public var columns: [String]
    public var values: [SQLiteValue]
    public var keyCount: Int

    public init(changeID: Int64, table: String, operation: Operation, stamp: UInt64, writer: UInt64, columns: [String], values: [SQLiteValue], keyCount: Int) {
        self.changeID = changeID
        self.table = table
        self.operation = operation
        self.stamp = stamp
        self.writer = writer
        self.columns = columns
        self.values = values
        self.keyCount = keyCount
    }

    public var key: ArraySlice<SQLiteValue> { values.prefix(keyCount) }

    /// Whether this version wins over a stored (stamp, writer): strictly greater, so applying the same
    /// event twice is a no-op and two nodes never disagree on a tie.
    public func supersedes(stamp other: UInt64, writer otherWriter: UInt64) -> Bool {
        (stamp, writer) > (other, otherWriter)
    }
}

/// Where a row's changes go: a stable hash of (table, key values) modulo the shard count, 1-based as
/// HarmonyLite names its streams. One row always maps to one ordered stream.
public enum Shard {
    public static func of(table: String, key: some Collection<SQLiteValue>, shards: UInt64) -> UInt64 {
        var hash: UInt64 = 14_695_981_039_346_656_037
        func mix(_ byte: UInt8) {
            hash ^= UInt64(byte)
            hash = hash &* 1_099_511_628_211
        }
        for byte in table.utf8 { mix(byte) }
        mix(0)
        var writer = BinaryWriter()
        for value in key { writer.write(value: value) }
        for byte in writer.bytes { mix(byte) }
        return hash % max(1, shards) + 1
    }
}
