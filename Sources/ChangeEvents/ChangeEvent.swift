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
///
/// The hash is FNV-1a over the table's UTF-8 bytes, a zero byte, then each key value as `BinaryWriter`
/// encodes it (`write(value:)`: its tag, then a big-endian integer or a u32 length and the bytes). The bytes
/// are mixed as they would be written, without writing them (the capturer computes this for every row).
public enum Shard {
    public static func of(table: String, key: some Collection<SQLiteValue>, shards: UInt64) -> UInt64 {
        guard shards > 1 else { return 1 }
        var hash = FNV1a()
        for byte in table.utf8 { hash.mix(byte) }
        hash.mix(0)
        for value in key {
            switch value {
            case .null: hash.mix(ValueTag.null.rawValue)
            case .integer(let v):
                hash.mix(ValueTag.integer.rawValue)
                hash.mix(bigEndian: UInt64(bitPattern: v))
            case .real(let v):
                hash.mix(ValueTag.real.rawValue)
                hash.mix(bigEndian: v.bitPattern)
            case .text(let bytes), .blob(let bytes):
                hash.mix(value.isText ? ValueTag.text.rawValue : ValueTag.blob.rawValue)
                hash.mix(bigEndian: UInt32(truncatingIfNeeded: bytes.count))
                for byte in bytes { hash.mix(byte) }
            }
        }
        return hash.value % shards + 1
    }

    /// 64-bit FNV-1a.
    struct FNV1a {
        private(set) var value: UInt64 = 14_695_981_039_346_656_037

        mutating func mix(_ byte: UInt8) {
            value ^= UInt64(byte)
            value = value &* 1_099_511_628_211
        }

        mutating func mix<T: FixedWidthInteger>(bigEndian integer: T) {
            var shift = T.bitWidth
            while shift > 0 {
                shift -= 8
                mix(UInt8(truncatingIfNeeded: integer >> shift))
            }
        }
    }
}

extension SQLiteValue {
    fileprivate var isText: Bool { if case .text = self { true } else { false } }
}
