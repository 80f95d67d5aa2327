import BinaryCoding
import SQLiteKit

/// SQLite values on the wire: a storage-class tag, then the value (64-bit integers and IEEE-754 bit
/// patterns big-endian, TEXT and BLOB as length-prefixed raw bytes). Nothing is reformatted.
enum ValueTag: UInt8 {
    case null = 0, integer = 1, real = 2, text = 3, blob = 4
}

extension BinaryWriter {
    public mutating func write(value: SQLiteValue) {
        switch value {
        case .null: write(ValueTag.null.rawValue)
        case .integer(let v): write(ValueTag.integer.rawValue); write(v)
        case .real(let v): write(ValueTag.real.rawValue); write(v.bitPattern)
        case .text(let v): write(ValueTag.text.rawValue); write(v)
        case .blob(let v): write(ValueTag.blob.rawValue); write(v)
        }
    }
}

extension BinaryReader {
    public mutating func readValue() throws -> SQLiteValue {
        let tag = try readUInt8()
        switch ValueTag(rawValue: tag) {
        case .null: return .null
        case .integer: return .integer(try readInt64())
        case .real: return .real(Double(bitPattern: try readUInt64()))
        case .text: return .text(try readBytes())
        case .blob: return .blob(try readBytes())
        case nil: throw ChangeBatchError("unknown value tag \(tag)")
        }
    }
}

/// A row key as bytes (a count, then each value as above): how a key is kept where it is looked up again.
public enum KeyCoding {
    public static func encode(_ key: some Collection<SQLiteValue>) -> [UInt8] {
        var writer = BinaryWriter()
        writer.write(UInt16(clamping: key.count))
        for value in key { writer.write(value: value) }
        return writer.bytes
    }

    /// nil for bytes that are not a key (empty, truncated, an unknown tag, bytes left over).
    public static func decode(_ bytes: [UInt8]) -> [SQLiteValue]? {
        var reader = BinaryReader(bytes)
        guard let count = try? reader.readUInt16() else { return nil }
        var key: [SQLiteValue] = []
        for _ in 0..<count {
            guard let value = try? reader.readValue() else { return nil }
            key.append(value)
        }
        return reader.remaining == 0 ? key : nil
    }
}
