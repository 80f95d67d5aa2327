import BinaryCoding
import SQLiteKit

/// SQLite values on the wire: a storage-class tag, then the value (64-bit integers and IEEE-754 bit
/// patterns big-endian, TEXT and BLOB as length-prefixed raw bytes). Nothing is reformatted.
enum ValueTag: UInt8 {
    case null = 0, integer = 1, real = 2, text = 3, blob = 4
}

extension BinaryWriter {
    mutating func write(value: SQLiteValue) {
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
    mutating func readValue() throws -> SQLiteValue {
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
