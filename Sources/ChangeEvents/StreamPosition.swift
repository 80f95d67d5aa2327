/// Where a node's cursor stands in a shard stream as JetStream describes it now. The one check the broker
/// (at subscribe), the snapshotter (accepting a gap) and the restore decision (at start) share.
public enum StreamPosition: Equatable, Sendable {
    /// The stream still holds every message after the cursor (or the cursor is at its start).
    case ok
    /// Another stream under the same name (deleted and created again, or lost with its only server): the
    /// cursor means nothing in it.
    case replaced(recorded: UInt64, current: UInt64)
    /// The stream no longer holds these messages, which the node has not applied (limits, `max_entries`).
    case missing(ClosedRange<UInt64>)

    /// - Parameters:
    ///   - position: the last sequence the node applied (0: none).
    ///   - recorded: the identity of the stream the cursor was recorded in (nil or 0: unknown).
    ///   - current: the stream's identity now (JetStream's creation time in ns; 0: unknown).
    ///   - firstSequence: the stream's first message now (nil: it holds none).
    public static func check(position: UInt64, recorded: UInt64? = nil, current: UInt64 = 0, firstSequence: UInt64?) -> StreamPosition {
        if position > 0, case .replaced(let recorded, let current) = StreamIdentityCheck.compare(recorded: recorded, current: current) {
            return .replaced(recorded: recorded, current: current)
        }
        // `first - position > 1`, not `position + 1 < first`: a cursor read from a snapshot can be 2^64 − 1.
        if let first = firstSequence, first > position, first - position > 1 { return .missing(position + 1...first - 1) }
        return .ok
    }
}

/// How a stream's identity compares with the one a cursor was recorded for.
public enum StreamIdentityCheck: Equatable, Sendable {
    /// Same stream, or nothing recorded yet (an earlier version, a stream never consumed): the cursor holds.
    case same
    /// Another stream under the same name: the cursor means nothing in it.
    case replaced(recorded: UInt64, current: UInt64)

    public static func compare(recorded: UInt64?, current: UInt64) -> StreamIdentityCheck {
        guard let recorded, recorded != 0, current != 0, recorded != current else { return .same }
        return .replaced(recorded: recorded, current: current)
    }
}

/// A cursor (last applied sequence per shard stream) as people read it: `harmonylite-changes-1=11
/// harmonylite-changes-2=4`, streams in order; `none` when empty.
public func describeCursor(_ cursor: [String: UInt64]) -> String {
    cursor.isEmpty ? "none" : cursor.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
}
