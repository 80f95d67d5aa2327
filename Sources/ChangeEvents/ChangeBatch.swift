import BinaryCoding
import CZstd
import SQLiteKit
import Synchronization

/// The events one node publishes in one JetStream message (all for one shard), with what a receiver needs
/// to judge them: who sent them and under which schema.
///
/// Wire format, version 1: `u8 version, u8 flags` then the body, zstd-compressed when flag bit 0 is set.
/// Body: `u64 origin, bytes schemaHash, u32 count`, then per event `i64 changeID, string table, u8 op,
/// u64 stamp, u64 writer, u16 keyCount, u16 columnCount` and per column `string name, value`.
/// The flag travels with the message (HarmonyLite made receivers guess from their own setting).
public struct ChangeBatch: Equatable, Sendable {
    public var origin: UInt64
    /// HarmonyLite's schema hash (hex) of the sender's replicated tables.
    public var schemaHash: String
    public var events: [ChangeEvent]

    public init(origin: UInt64, schemaHash: String, events: [ChangeEvent]) {
        self.origin = origin
        self.schemaHash = schemaHash
        self.events = events
    }

    public static let version: UInt8 = 1
    /// Largest body a receiver decompresses. Senders cut batches below one NATS message (1 MiB) before
    /// compressing, so twice that is room to spare; every hostile message costs at most this much memory.
    public static let maximumBodySize = 2 << 20
    /// The fewest bytes one event takes (ids, stamp, writer, counts, an empty table name, one empty column):
    /// a count announced by the message can never reserve more than its bytes can hold.
    static let minimumEventSize = 8 + 4 + 1 + 8 + 8 + 2 + 2 + 4 + 1

    /// Bodies below this many bytes are sent uncompressed whatever `compress` says (the flag tells the
    /// receiver): a message of a few rows gains a few dozen bytes from zstd and costs both sides more than
    /// encoding it did.
    public static let compressionThreshold = 1024

    public func encoded(compress: Bool) -> [UInt8] {
        // Version and flags first, so that an uncompressed batch is this very buffer.
        var body = BinaryWriter(reservingCapacity: 256 * events.count + 2)
        body.write(Self.version)
        body.write(UInt8(0))
        body.write(origin)
        body.write(schemaHash)
        body.write(UInt32(events.count))
        for event in events {
            body.write(event.changeID)
            body.write(event.table)
            body.write(event.operation.rawValue)
            body.write(event.stamp)
            body.write(event.writer)
            body.write(UInt16(event.keyCount))
            body.write(UInt16(event.columns.count))
            for (name, value) in zip(event.columns, event.values) {
                body.write(name)
                body.write(value: value)
            }
        }
        guard compress, body.bytes.count - 2 >= Self.compressionThreshold else { return body.bytes }
        return Zstd.compress(body.bytes, from: 2, after: [Self.version, 1])
    }

    /// Decodes untrusted bytes: any defect is a `ChangeBatchError`, never a crash.
    public init(decoding bytes: [UInt8]) throws(ChangeBatchError) {
        guard bytes.count >= 2 else { throw ChangeBatchError("message of \(bytes.count) bytes is too short") }
        guard bytes[0] == Self.version else { throw ChangeBatchError("change batch version \(bytes[0]) is not understood (this node reads \(Self.version))") }
        guard bytes[1] & ~1 == 0 else { throw ChangeBatchError("unknown flags \(bytes[1])") }
        var reader = bytes[1] & 1 == 1 ? BinaryReader(try Zstd.decompress(Array(bytes[2...]), limit: Self.maximumBodySize)) : BinaryReader(bytes, from: 2)
        do {
            origin = try reader.readUInt64()
            schemaHash = try reader.readString()
            let count = Int(try reader.readUInt32())
            var events: [ChangeEvent] = []
            guard count <= reader.remaining / Self.minimumEventSize else {
                throw ChangeBatchError("\(count) events announced in \(reader.remaining) bytes")
            }
            events.reserveCapacity(count)
            // The wire repeats each event's table and column names: the previous event's strings are reused
            // when the bytes match (one comparison instead of a new string per name, and one column array
            // shared by every event of the same shape).
            var previousTable: String?
            var previousColumns: [String] = []
            for _ in 0..<count {
                let changeID = try reader.readInt64()
                let table = try reader.readString(reusing: previousTable).string
                previousTable = table
                let operationByte = try reader.readUInt8()
                guard let operation = ChangeEvent.Operation(rawValue: operationByte) else {
                    throw ChangeBatchError("unknown operation \(operationByte)")
                }
                let stamp = try reader.readUInt64()
                let writer = try reader.readUInt64()
                let keyCount = Int(try reader.readUInt16())
                let columnCount = Int(try reader.readUInt16())
                guard keyCount >= 1, keyCount <= columnCount else {
                    throw ChangeBatchError("event for \(table) has \(keyCount) key columns out of \(columnCount)")
                }
                let sameWidth = previousColumns.count == columnCount
                var columns = sameWidth ? previousColumns : []
                var values: [SQLiteValue] = []
                values.reserveCapacity(min(columnCount, reader.remaining / 5))
                for index in 0..<columnCount {
                    let (name, reused) = try reader.readString(reusing: index < previousColumns.count ? previousColumns[index] : nil)
                    if !sameWidth {
                        columns.append(name)
                    } else if !reused {
                        columns[index] = name
                    }
                    values.append(try reader.readValue())
                }
                previousColumns = columns
                events.append(
                    ChangeEvent(
                        changeID: changeID, table: table, operation: operation, stamp: stamp, writer: writer, columns: columns, values: values,
                        keyCount: keyCount))
            }
            guard reader.remaining == 0 else { throw ChangeBatchError("\(reader.remaining) trailing bytes") }
            self.events = events
        } catch let error as ChangeBatchError {
            throw error
        } catch {
            throw ChangeBatchError("truncated or malformed: \(error)")
        }
    }
}

public struct ChangeBatchError: Error, Equatable, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One-shot zstd. The frame records its content size, which decompression checks against a limit before
/// allocating, so a hostile message cannot make a receiver allocate gigabytes.
enum Zstd {
    /// One compression context for the process, kept: `ZSTD_compress` makes and clears a new one at every
    /// call, which cost more than compressing a message of a few dozen rows.
    private static let context = Mutex(CompressionContext())

    private final class CompressionContext: @unchecked Sendable {
        let pointer = ZSTD_createCCtx()
        deinit { ZSTD_freeCCtx(pointer) }
    }

    static func compress(_ input: [UInt8]) -> [UInt8] { compress(input, from: 0, after: []) }

    /// `prefix`, then `input[offset...]` compressed (level 3), in one buffer.
    static func compress(_ input: [UInt8], from offset: Int, after prefix: [UInt8]) -> [UInt8] {
        let size = input.count - offset
        var output = prefix + [UInt8](repeating: 0, count: ZSTD_compressBound(size))
        let written = context.withLock { context in
            input.withUnsafeBytes { source in
                output.withUnsafeMutableBytes {
                    ZSTD_compressCCtx(context.pointer, $0.baseAddress! + prefix.count, $0.count - prefix.count, source.baseAddress.map { $0 + offset }, size, 3)
                }
            }
        }
        precondition(ZSTD_isError(written) == 0, "zstd compression failed")
        output.removeLast(output.count - prefix.count - written)
        return output
    }

    static func decompress(_ input: [UInt8], limit: Int) throws(ChangeBatchError) -> [UInt8] {
        let size = input.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        // ZSTD_CONTENTSIZE_UNKNOWN and _ERROR are the two largest UInt64 values.
        guard size < UInt64.max - 1 else { throw ChangeBatchError("not a zstd frame with a known size") }
        guard size <= UInt64(limit) else { throw ChangeBatchError("compressed body claims \(size) bytes, above the \(limit) limit") }
        var output = [UInt8](repeating: 0, count: Int(size))
        let written = input.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { ZSTD_decompress($0.baseAddress, $0.count, source.baseAddress, source.count) }
        }
        guard ZSTD_isError(written) == 0, written == Int(size) else {
            throw ChangeBatchError("zstd: \(String(cString: ZSTD_getErrorName(written)))")
        }
        return output
    }
}
