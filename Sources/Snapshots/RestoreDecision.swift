import ChangeLog

/// Why this node must restore a snapshot before it applies anything, or nil when it need not.
public enum RestoreDecision {
    /// Where the node's database says it is: the cursor and the identities of the streams it belongs to.
    public struct Position: Equatable, Sendable {
        public var cursor: [String: UInt64]
        public var streams: [String: UInt64]

        public init(cursor: [String: UInt64], streams: [String: UInt64] = [:]) {
            self.cursor = cursor
            self.streams = streams
        }
    }

    /// A shard stream as JetStream describes it now.
    public struct StreamNow: Equatable, Sendable {
        /// Nil when the stream holds no message.
        public var firstSequence: UInt64?
        /// Its identity (creation time, ns since 1970; 0: unknown).
        public var created: UInt64

        public init(firstSequence: UInt64?, created: UInt64 = 0) {
            self.firstSequence = firstSequence
            self.created = created
        }
    }

    /// `seqMap`: the seq map file's content (nil: missing), or the error reading it.
    public static func reason(seqMap: Result<[String: UInt64]?, any Error>, stored: Position, streams: [String: StreamNow]) -> String? {
        switch seqMap {
        case .failure(let error): return "the seq map cannot be read (\(error))"
        case .success(nil): return "there is no seq map"
        case .success: break
        }
        for (stream, now) in streams.sorted(by: { $0.key < $1.key }) {
            let position = stored.cursor[stream] ?? 0
            if position > 0, case .replaced(let recorded, let current) = StreamIdentityCheck.compare(recorded: stored.streams[stream], current: now.created) {
                return "\(stream) is not the stream this node's cursor (message \(position)) belongs to: it was created at \(current) ns, "
                    + "the cursor's at \(recorded) ns (deleted and created again, or lost with its only server)"
            }
            // `first - position > 1`, not `position + 1 < first`: a cursor read from a snapshot can be 2^64 − 1.
            if let first = now.firstSequence, first > position && first - position > 1 {
                return "\(stream) starts at message \(first), past this node's position \(position)"
            }
        }
        return nil
    }
}
