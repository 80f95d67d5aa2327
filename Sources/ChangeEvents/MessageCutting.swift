import SQLiteKit

/// How one shard's events become JetStream messages: in change-log order, a message closed once it
/// reaches `targetBytes`, never above `maximumBytes`; an event that alone exceeds `maximumBytes` cannot
/// travel and is refused (the caller logs and counts it; the rows after it flow on).
///
/// Sizes are the uncompressed encoded sizes of the events (`ChangeEvent.encodedSize`).
public struct MessageCutting: Equatable, Sendable {
    public var targetBytes: Int
    public var maximumBytes: Int

    public init(targetBytes: Int = 256 << 10, maximumBytes: Int) {
        self.targetBytes = targetBytes
        self.maximumBytes = maximumBytes
    }

    /// The most event bytes that fit a message of `messageBytes` once encoded: room is left for the envelope
    /// (version, flags, origin, schema hash, count: under 1 KiB), zstd's worst-case growth of incompressible
    /// data (`ZSTD_compressBound`: 1/256 and a few bytes, 4 KiB for 1 MiB) and the message id header.
    public static func eventBytes(inMessagesOf messageBytes: Int) -> Int {
        messageBytes - messageBytes / 256 - (12 << 10)
    }

    public struct Result: Equatable, Sendable {
        /// The messages' events, each group in change-log order.
        public var messages: [[ChangeEvent]] = []
        /// Events too large for any message, in change-log order.
        public var refused: [ChangeEvent] = []
    }

    public func cut(_ events: [ChangeEvent]) -> Result {
        var result = Result()
        var group: [ChangeEvent] = []
        var size = 0
        func close() {
            if !group.isEmpty { result.messages.append(group) }
            group.removeAll()
            size = 0
        }
        for event in events {
            let eventSize = event.encodedSize
            guard eventSize <= maximumBytes else {
                result.refused.append(event)
                continue
            }
            if size + eventSize > maximumBytes { close() }
            group.append(event)
            size += eventSize
            if size >= targetBytes { close() }
        }
        close()
        return result
    }
}

extension ChangeEvent {
    /// The bytes this event takes in an uncompressed `ChangeBatch` body (see its wire format).
    public var encodedSize: Int {
        var size = 8 + (4 + table.utf8.count) + 1 + 8 + 8 + 2 + 2
        for (name, value) in zip(columns, values) {
            size += 4 + name.utf8.count + value.encodedSize
        }
        return size
    }
}

extension SQLiteValue {
    /// Tag byte and value, as `BinaryWriter.write(value:)` writes them.
    var encodedSize: Int {
        switch self {
        case .null: return 1
        case .integer, .real: return 9
        case .text(let bytes), .blob(let bytes): return 5 + bytes.count
        }
    }
}
