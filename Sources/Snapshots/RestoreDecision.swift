import ChangeEvents
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
            switch StreamPosition.check(position: position, recorded: stored.streams[stream], current: now.created, firstSequence: now.firstSequence) {
            case .ok: continue
            case .replaced(let recorded, let current):
                return "\(stream) is not the stream this node's cursor (message \(position)) belongs to: it was created at \(current) ns, "
                    + "the cursor's at \(recorded) ns (deleted and created again, or lost with its only server)"
            case .missing(let missing):
                return "\(stream) starts at message \(missing.upperBound + 1), past this node's position \(position)"
            }
        }
        return nil
    }
}
