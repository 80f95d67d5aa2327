/// Appends big-endian integers and length-prefixed strings/bytes: the body encoding of every IPC message.
public struct BinaryWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(reservingCapacity capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func write(_ value: UInt8) { bytes.append(value) }
    public mutating func write(_ value: Bool) { bytes.append(value ? 1 : 0) }
    public mutating func write(_ value: UInt16) { writeInteger(value) }
    public mutating func write(_ value: UInt32) { writeInteger(value) }
    public mutating func write(_ value: UInt64) { writeInteger(value) }
    public mutating func write(_ value: Int32) { writeInteger(UInt32(bitPattern: value)) }
    public mutating func write(_ value: Int64) { writeInteger(UInt64(bitPattern: value)) }

    /// u32 byte count, then the UTF-8 bytes (copied straight from the string: no array in between).
    public mutating func write(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            write(UInt32(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    /// u32 byte count, then the bytes.
    public mutating func write(_ value: [UInt8]) {
        write(UInt32(value.count))
        bytes.append(contentsOf: value)
    }

    private mutating func writeInteger<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }
}

/// Reads what `BinaryWriter` wrote, never past the end: every read is bounds-checked and throws instead.
public struct BinaryReader {
    public enum Failure: Error, Equatable {
        case endOfInput(needed: Int, remaining: Int)
        case invalidUTF8
        case invalidBool(UInt8)
    }

    private let bytes: [UInt8]
    private var index: Int

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        index = 0
    }

    /// Reads `bytes` from `offset` on (what comes before is the caller's, read already): no copy of the rest.
    public init(_ bytes: [UInt8], from offset: Int) {
        self.bytes = bytes
        index = min(max(0, offset), bytes.count)
    }

    public var remaining: Int { bytes.count - index }

    public mutating func readUInt8() throws(Failure) -> UInt8 {
        try need(1)
        defer { index += 1 }
        return bytes[index]
    }

    public mutating func readBool() throws(Failure) -> Bool {
        let byte = try readUInt8()
        guard byte <= 1 else { throw .invalidBool(byte) }
        return byte == 1
    }

    public mutating func readUInt16() throws(Failure) -> UInt16 { try readInteger() }
    public mutating func readUInt32() throws(Failure) -> UInt32 { try readInteger() }
    public mutating func readUInt64() throws(Failure) -> UInt64 { try readInteger() }
    public mutating func readInt32() throws(Failure) -> Int32 { Int32(bitPattern: try readInteger()) }
    public mutating func readInt64() throws(Failure) -> Int64 { Int64(bitPattern: try readInteger()) }

    public mutating func readBytes() throws(Failure) -> [UInt8] {
        let count = Int(try readUInt32())
        try need(count)
        defer { index += count }
        return Array(bytes[index..<index + count])
    }

    /// Validated straight from the input (no array in between): every event carries its table's and
    /// columns' names, so this runs several times per row.
    public mutating func readString() throws(Failure) -> String {
        let count = Int(try readUInt32())
        try need(count)
        let start = index
        index += count
        let string = bytes.withUnsafeBufferPointer { String(validating: UnsafeBufferPointer(rebasing: $0[start..<start + count]), as: UTF8.self) }
        guard let string else { throw .invalidUTF8 }
        return string
    }

    /// `readString`, but when the string read has exactly `candidate`'s bytes, `candidate` itself (no new
    /// string, no validation: it is valid already); `reused` says which. For names that repeat, such as the
    /// table and column names every event of a change batch carries again.
    public mutating func readString(reusing candidate: String?) throws(Failure) -> (string: String, reused: Bool) {
        guard var candidate else { return (try readString(), false) }
        let count = Int(try readUInt32())
        try need(count)
        let start = index
        let same = candidate.withUTF8 { known in
            known.count == count && bytes.withUnsafeBufferPointer { known.elementsEqual(UnsafeBufferPointer(rebasing: $0[start..<start + count])) }
        }
        guard !same else {
            index += count
            return (candidate, true)
        }
        index += count
        let string = bytes.withUnsafeBufferPointer { String(validating: UnsafeBufferPointer(rebasing: $0[start..<start + count]), as: UTF8.self) }
        guard let string else { throw .invalidUTF8 }
        return (string, false)
    }

    private mutating func readInteger<T: FixedWidthInteger>() throws(Failure) -> T {
        let size = MemoryLayout<T>.size
        try need(size)
        var value: T = 0
        for offset in 0..<size { value = value << 8 | T(bytes[index + offset]) }
        index += size
        return value
    }

    private func need(_ count: Int) throws(Failure) {
        guard count <= remaining else { throw .endOfInput(needed: count, remaining: remaining) }
    }
}
