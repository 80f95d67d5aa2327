/// Why this node must restore a snapshot before it applies anything, or nil when it need not.
public enum RestoreDecision {
    /// `seqMap`: the seq map file's content (nil: missing), or the error reading it. `cursor`: the database's
    /// stored cursor. `firstSequences`: each non-empty shard stream's first sequence.
    public static func reason(seqMap: Result<[String: UInt64]?, any Error>, cursor: [String: UInt64], firstSequences: [String: UInt64]) -> String? {
        switch seqMap {
        case .failure(let error): return "the seq map cannot be read (\(error))"
        case .success(nil): return "there is no seq map"
        case .success: break
        }
        // `first - position > 1`, not `position + 1 < first`: a cursor read from a snapshot can be 2^64 − 1.
        for (stream, first) in firstSequences.sorted(by: { $0.key < $1.key }) where first > (cursor[stream] ?? 0) && first - (cursor[stream] ?? 0) > 1 {
            return "\(stream) starts at message \(first), past this node's position \(cursor[stream] ?? 0)"
        }
        return nil
    }
}
