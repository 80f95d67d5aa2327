import CZstd
import SQLiteKit

/// A change as upstream HarmonyLite (Go) publishes it: one row per JetStream message, a CBOR map
/// `{FromNodeId: uint, Payload: {Id: int, Type: "insert"|"update"|"delete", TableName: text,
/// Row: {column: value}, sh: text}}`, zstd-compressed when its `compress` is on. Row values are CBOR
/// integers, floats, text, byte strings, null, or tag 32 around `{1: seconds since 1970}` for a
/// `time.Time` (a DATETIME column read by its SQLite driver).
///
/// Upstream's rows carry no clock: `changeEvent` stamps them by the rule in
/// `docs/upgrading-from-harmonylite.md` (the message's JetStream time and sequence, the origin as writer).
///
/// The decoder is total: any bytes give an event or an `UpstreamEventError`, within bounded memory
/// (the decompressed body is at most `ChangeBatch.maximumBodySize`, nesting at most 8 levels, counts
/// checked against the bytes that remain).
public struct UpstreamEvent: Equatable, Sendable {
    public enum Operation: String, Sendable {
        case insert, update, delete
    }

    public var origin: UInt64
    /// Upstream's change-log id on the origin.
    public var id: Int64
    public var operation: Operation
    public var table: String
    /// The row's columns and values, sorted by column name (upstream's map has no order).
    public var columns: [String]
    public var values: [SQLiteValue]
    /// Upstream's schema hash of the origin's tables, when it sent one.
    public var schemaHash: String?
    /// A copy one of our nodes published for upstream nodes (`encode`): our nodes have the original.
    public var republished = false

    /// The top-level key that marks a copy published by one of our nodes; upstream's decoder ignores
    /// fields it does not know.
    static let republishedKey = "HarmonyLiteSwift"

    /// The zstd frame magic: upstream's compressed messages start with it, its CBOR ones never do (a
    /// CBOR map starts with 0xA0–0xBF).
    static let zstdMagic: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]

    /// Whether `bytes` may be an upstream message (compressed, or a CBOR map) rather than one of our
    /// batches (which start with their version byte, 1).
    public static func looksUpstream(_ bytes: [UInt8]) -> Bool {
        bytes.starts(with: zstdMagic) || (bytes.first.map { $0 >> 5 == 5 } ?? false)
    }

    public init(decoding bytes: [UInt8]) throws(UpstreamEventError) {
        let body: [UInt8]
        if bytes.starts(with: Self.zstdMagic) {
            do {
                body = try Zstd.decompressAnySize(bytes, limit: ChangeBatch.maximumBodySize)
            } catch {
                throw UpstreamEventError("zstd: \(error.description)")
            }
        } else {
            guard bytes.count <= ChangeBatch.maximumBodySize else {
                throw UpstreamEventError("message of \(bytes.count) bytes is above the \(ChangeBatch.maximumBodySize) limit")
            }
            body = bytes
        }
        var reader = CBORReader(body)
        let top = try reader.readItem(depth: 0)
        guard reader.atEnd else { throw UpstreamEventError("\(body.count - reader.index) trailing bytes") }
        guard case .map(let entries) = top else { throw UpstreamEventError("not a CBOR map") }
        var origin: UInt64?
        var payload: [(CBORItem, CBORItem)]?
        var republished = false
        for (key, value) in entries {
            switch (key.text, value) {
            case (Self.republishedKey, .bool(let flag)): republished = flag
            case ("FromNodeId", .unsigned(let node)): origin = node
            case ("Payload", .map(let map)): payload = map
            case ("FromNodeId", _), ("Payload", _): throw UpstreamEventError("\(key.text ?? "") has the wrong type")
            default: continue  // a field a later upstream version added
            }
        }
        guard let origin, let payload else { throw UpstreamEventError("no FromNodeId or no Payload") }
        var id: Int64?, operation: Operation?, table: String?, row: [(CBORItem, CBORItem)]?, hash: String?
        for (key, value) in payload {
            switch (key.text, value) {
            case ("Id", .unsigned(let n)) where n <= UInt64(Int64.max): id = Int64(n)
            case ("Id", .negative(let n)) where n <= UInt64(Int64.max): id = -1 - Int64(n)
            case ("Type", .text(let bytes)):
                guard let parsed = Operation(rawValue: String(decoding: bytes, as: UTF8.self)) else {
                    throw UpstreamEventError("unknown operation \(String(decoding: bytes.prefix(32), as: UTF8.self))")
                }
                operation = parsed
            case ("TableName", .text(let bytes)):
                guard let name = String(validating: bytes, as: UTF8.self), !name.isEmpty else { throw UpstreamEventError("table name is empty or not UTF-8") }
                table = name
            case ("Row", .map(let map)): row = map
            case ("sh", .text(let bytes)): hash = String(decoding: bytes, as: UTF8.self)
            case ("Id", _), ("Type", _), ("TableName", _), ("Row", _), ("sh", _): throw UpstreamEventError("\(key.text ?? "") has the wrong type")
            default: continue
            }
        }
        guard let id, let operation, let table, let row else { throw UpstreamEventError("payload lacks Id, Type, TableName or Row") }
        var named: [(String, SQLiteValue)] = []
        named.reserveCapacity(row.count)
        for (key, value) in row {
            guard case .text(let bytes) = key, let column = String(validating: bytes, as: UTF8.self), !column.isEmpty else {
                throw UpstreamEventError("a column name of \(table) is not non-empty UTF-8 text")
            }
            named.append((column, try Self.value(value, column: column)))
        }
        named.sort { $0.0 < $1.0 }
        for index in named.indices.dropFirst() where named[index].0 == named[index - 1].0 {
            throw UpstreamEventError("column \(named[index].0) appears twice")
        }
        self.origin = origin
        self.republished = republished
        self.id = id
        self.operation = operation
        self.table = table
        columns = named.map(\.0)
        values = named.map(\.1)
        schemaHash = hash
    }

    static func value(_ item: CBORItem, column: String) throws(UpstreamEventError) -> SQLiteValue {
        switch item {
        case .unsigned(let n):
            guard n <= UInt64(Int64.max) else { throw UpstreamEventError("\(column): integer \(n) is beyond SQLite's range") }
            return .integer(Int64(n))
        case .negative(let n):
            guard n <= UInt64(Int64.max) else { throw UpstreamEventError("\(column): integer -1-\(n) is beyond SQLite's range") }
            return .integer(-1 - Int64(n))
        case .float(let value): return .real(value)
        case .text(let bytes): return .text(bytes)
        case .bytes(let bytes): return .blob(bytes)
        case .null: return .null
        case .bool(let flag): return .integer(flag ? 1 : 0)
        case .tag(32, let inner):
            // Upstream's wrapper of a time.Time: {1: time}, the time as seconds since 1970 (integer or
            // float) or as RFC 3339 text. Written back as its SQLite driver writes a time.Time.
            guard case .map(let entries) = inner, entries.count == 1, case .unsigned(1) = entries[0].0 else {
                throw UpstreamEventError("\(column): tag 32 does not hold upstream's time wrapper")
            }
            switch entries[0].1 {
            case .unsigned(let seconds) where seconds <= 253_402_300_799: return .text(Array(TimeText.format(seconds: Int64(seconds), nanoseconds: 0).utf8))
            case .negative(let n) where n < 62_135_596_800: return .text(Array(TimeText.format(seconds: -1 - Int64(n), nanoseconds: 0).utf8))
            case .float(let seconds) where seconds.isFinite && seconds > -62_135_596_800 && seconds < 253_402_300_800:
                let whole = seconds.rounded(.down)
                return .text(Array(TimeText.format(seconds: Int64(whole), nanoseconds: Int64(((seconds - whole) * 1e9).rounded(.down))).utf8))
            case .text(let bytes): return .text(bytes)
            case .null: return .null
            default: throw UpstreamEventError("\(column): time out of range or of an unknown form")
            }
        case .tag, .array, .map, .undefined, .simple:
            throw UpstreamEventError("\(column): a value of a kind SQLite does not store")
        }
    }

    /// This event as one of ours, stamped as `stamp` by `writer`, with `primaryKey` (the local table's key
    /// columns, in key order) first. Nil when the row lacks a key column.
    public func changeEvent(primaryKey: [String], stamp: UInt64, writer: UInt64) -> ChangeEvent? {
        var orderedColumns: [String] = []
        var orderedValues: [SQLiteValue] = []
        for key in primaryKey {
            guard let index = columns.firstIndex(of: key) else { return nil }
            orderedColumns.append(key)
            orderedValues.append(values[index])
        }
        if operation != .delete {
            for (column, value) in zip(columns, values) where !primaryKey.contains(column) {
                orderedColumns.append(column)
                orderedValues.append(value)
            }
        }
        guard !primaryKey.isEmpty else { return nil }
        return ChangeEvent(
            changeID: id, table: table, operation: operation == .delete ? .delete : .upsert, stamp: stamp, writer: writer,
            columns: orderedColumns, values: orderedValues, keyCount: primaryKey.count)
    }

    /// `event` as upstream publishes a change, for upstream nodes of a mixed cluster: an upsert as an
    /// `insert` (upstream applies inserts and updates alike, INSERT OR REPLACE of the row), a delete with the
    /// key columns; text that is not UTF-8 as a byte string (upstream's decoder refuses such text); marked
    /// `republished`; zstd-compressed when `compress` (upstream's receivers decompress by their own setting).
    public static func encode(_ event: ChangeEvent, origin: UInt64, schemaHash: String, compress: Bool) -> [UInt8] {
        var out: [UInt8] = []
        func head(_ major: UInt8, _ value: UInt64) { CBORHead.append(major: major, value, to: &out) }
        func text(_ string: String) { head(3, UInt64(string.utf8.count)); out += string.utf8 }
        func integer(_ value: Int64) { value >= 0 ? head(0, UInt64(value)) : head(1, UInt64(~value)) }
        head(5, 3)
        text("FromNodeId"); head(0, origin)
        text(republishedKey); out.append(0xF5)
        text("Payload")
        head(5, 5)
        text("Id"); integer(event.changeID)
        text("Type"); text(event.operation == .delete ? "delete" : "insert")
        text("TableName"); text(event.table)
        text("Row")
        let count = event.operation == .delete ? event.keyCount : event.columns.count
        head(5, UInt64(count))
        for (column, value) in zip(event.columns.prefix(count), event.values.prefix(count)) {
            text(column)
            switch value {
            case .null: out.append(0xF6)
            case .integer(let n): integer(n)
            case .real(let x): out.append(0xFB); out += (0..<8).reversed().map { UInt8(truncatingIfNeeded: x.bitPattern >> ($0 * 8)) }
            case .text(let bytes) where String(validating: bytes, as: UTF8.self) != nil: head(3, UInt64(bytes.count)); out += bytes
            case .text(let bytes), .blob(let bytes): head(2, UInt64(bytes.count)); out += bytes
            }
        }
        text("sh"); text(schemaHash)
        return compress ? Zstd.compress(out) : out
    }

    /// The stamp of an upstream message: its JetStream time in ms in the high 48 bits (the HLC's layout),
    /// the low 16 bits of its stream sequence below, so two messages of one row within one millisecond
    /// (always in one stream: upstream shards by row) keep their order. The same on every node.
    public static func stamp(jetStreamNanoseconds: Int64, sequence: UInt64) -> UInt64 {
        let milliseconds = UInt64(clamping: max(0, jetStreamNanoseconds / 1_000_000)) & 0xFFFF_FFFF_FFFF
        return milliseconds << 16 | (sequence & 0xFFFF)
    }
}

/// An upstream message parked because this node lacks its table (or the key column it names): upstream's
/// messages do not say which columns are the key, so it cannot become one of our events until the table
/// exists. Parked as `"HLUP"`, its stamp (8 bytes, big-endian: the JetStream time it had, which a retry no
/// longer has) and the message as it arrived; a retry (a schema change, `-retry-parked`) decodes it again
/// against the table as it is then. The magic starts like neither of our batches (version byte 1) nor an
/// upstream message (a CBOR map, 0xA0–0xBF, or the zstd magic).
public enum ParkedUpstreamEvent {
    static let magic: [UInt8] = Array("HLUP".utf8)

    public static func wrap(stamp: UInt64, message: [UInt8]) -> [UInt8] {
        magic + (0..<8).reversed().map { UInt8(truncatingIfNeeded: stamp >> ($0 * 8)) } + message
    }

    /// The stamp and the message, or nil when `bytes` is not a parked upstream message.
    public static func unwrap(_ bytes: [UInt8]) -> (stamp: UInt64, message: [UInt8])? {
        guard bytes.count > magic.count + 8, bytes.starts(with: magic) else { return nil }
        let stamp = bytes[magic.count..<magic.count + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return (stamp, Array(bytes[(magic.count + 8)...]))
    }
}

public struct UpstreamEventError: Error, Equatable, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// `2006-01-02 15:04:05.999999999-07:00` in UTC, the text upstream's SQLite driver writes for a time.
enum TimeText {
    static func format(seconds: Int64, nanoseconds: Int64) -> String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Civil from days (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        var text =
            "\(year < 1000 ? String(repeating: "0", count: 4 - "\(year)".count) : "")\(year)-\(two(month))-\(two(day)) "
            + "\(two(secondOfDay / 3600)):\(two(secondOfDay % 3600 / 60)):\(two(secondOfDay % 60))"
        if nanoseconds > 0 {
            var fraction = String(nanoseconds)
            fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text += "." + fraction
        }
        return text + "+00:00"
    }
}

/// The head of a CBOR data item (major type and argument), in its shortest form.
public enum CBORHead {
    public static func append(major: UInt8, _ value: UInt64, to out: inout [UInt8]) {
        let type = major << 5
        switch value {
        case 0..<24: out.append(type | UInt8(value))
        case 24...0xFF: out += [type | 24, UInt8(value)]
        case 0x100...0xFFFF: out += [type | 25] + (0..<2).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
        case 0x10000...0xFFFF_FFFF: out += [type | 26] + (0..<4).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
        default: out += [type | 27] + (0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
        }
    }
}

/// A CBOR data item (RFC 8949), definite lengths only (what upstream's encoder writes).
indirect enum CBORItem {
    case unsigned(UInt64)
    /// The value -1 - n.
    case negative(UInt64)
    case bytes([UInt8])
    case text([UInt8])
    case array([CBORItem])
    case map([(CBORItem, CBORItem)])
    case tag(UInt64, CBORItem)
    case float(Double)
    case bool(Bool)
    case null
    case undefined
    case simple(UInt8)

    var text: String? {
        if case .text(let bytes) = self { return String(decoding: bytes, as: UTF8.self) }
        return nil
    }
}

/// Reads CBOR items from untrusted bytes: every length is checked against what remains, nesting is bounded.
struct CBORReader {
    static let maximumDepth = 8
    let bytes: [UInt8]
    private(set) var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { index == bytes.count }
    private var remaining: Int { bytes.count - index }

    private mutating func byte() throws(UpstreamEventError) -> UInt8 {
        guard index < bytes.count else { throw UpstreamEventError("truncated") }
        defer { index += 1 }
        return bytes[index]
    }

    private mutating func bigEndian(_ width: Int) throws(UpstreamEventError) -> UInt64 {
        guard width <= remaining else { throw UpstreamEventError("truncated") }
        var value: UInt64 = 0
        for _ in 0..<width { value = value << 8 | UInt64(bytes[index]); index += 1 }
        return value
    }

    private mutating func argument(_ info: UInt8) throws(UpstreamEventError) -> UInt64 {
        switch info {
        case 0..<24: return UInt64(info)
        case 24: return try bigEndian(1)
        case 25: return try bigEndian(2)
        case 26: return try bigEndian(4)
        case 27: return try bigEndian(8)
        case 31: throw UpstreamEventError("indefinite lengths are not supported")
        default: throw UpstreamEventError("reserved CBOR additional information \(info)")
        }
    }

    /// A count of items that each take at least one byte: never more than the bytes that remain.
    private func count(_ value: UInt64, perItem: Int) throws(UpstreamEventError) -> Int {
        guard value <= UInt64(remaining / perItem) else { throw UpstreamEventError("\(value) items announced in \(remaining) bytes") }
        return Int(value)
    }

    mutating func readItem(depth: Int) throws(UpstreamEventError) -> CBORItem {
        guard depth <= Self.maximumDepth else { throw UpstreamEventError("nested deeper than \(Self.maximumDepth)") }
        let initial = try byte()
        let major = initial >> 5, info = initial & 0x1F
        switch major {
        case 0: return .unsigned(try argument(info))
        case 1: return .negative(try argument(info))
        case 2, 3:
            // The argument first: a method call on `self` would read `remaining` before its arguments advance.
            let announced = try argument(info)
            let length = try count(announced, perItem: 1)
            let slice = Array(bytes[index..<index + length])
            index += length
            return major == 2 ? .bytes(slice) : .text(slice)
        case 4:
            let announced = try argument(info)
            let n = try count(announced, perItem: 1)
            var items: [CBORItem] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try readItem(depth: depth + 1)) }
            return .array(items)
        case 5:
            let announced = try argument(info)
            let n = try count(announced, perItem: 2)
            var entries: [(CBORItem, CBORItem)] = []
            entries.reserveCapacity(n)
            for _ in 0..<n {
                let key = try readItem(depth: depth + 1)
                entries.append((key, try readItem(depth: depth + 1)))
            }
            return .map(entries)
        case 6:
            let tag = try argument(info)
            return .tag(tag, try readItem(depth: depth + 1))
        default:
            switch info {
            case 20: return .bool(false)
            case 21: return .bool(true)
            case 22: return .null
            case 23: return .undefined
            case 24: return .simple(UInt8(try bigEndian(1)))
            case 25: return .float(Self.half(UInt16(try bigEndian(2))))
            case 26: return .float(Double(Float(bitPattern: UInt32(try bigEndian(4)))))
            case 27: return .float(Double(bitPattern: try bigEndian(8)))
            case 0..<20: return .simple(info)
            default: throw UpstreamEventError("reserved or break byte \(initial)")
            }
        }
    }

    /// IEEE 754 half precision, widened.
    static func half(_ bits: UInt16) -> Double {
        let sign: Double = bits & 0x8000 != 0 ? -1 : 1
        let exponent = Int((bits >> 10) & 0x1F)
        let fraction = Double(bits & 0x3FF)
        switch exponent {
        case 0: return sign * fraction * 0x1p-24
        case 31: return fraction == 0 ? sign * .infinity : .nan
        default: return sign * (1 + fraction / 1024) * Double(sign: .plus, exponent: exponent - 15, significand: 1)
        }
    }
}

extension Zstd {
    /// Like `decompress`, also for frames that do not record their size (upstream's encoder writes small
    /// payloads without it): decompressed in one shot into a buffer of `limit` bytes, so no frame can make
    /// it allocate more (one-shot decompression needs no window buffer).
    static func decompressAnySize(_ input: [UInt8], limit: Int) throws(ChangeBatchError) -> [UInt8] {
        let size = input.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        if size < UInt64.max - 1 { return try decompress(input, limit: limit) }
        var output = [UInt8](repeating: 0, count: limit)
        let written = input.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { ZSTD_decompress($0.baseAddress, $0.count, source.baseAddress, source.count) }
        }
        guard ZSTD_isError(written) == 0 else { throw ChangeBatchError("zstd: \(String(cString: ZSTD_getErrorName(written)))") }
        output.removeLast(output.count - written)
        return output
    }
}
