import IPC

/// Stream name → last sequence: how far this node has got in each shard stream.
public typealias StreamCursor = [String: UInt64]

extension ApplyPipeline {
    /// What the glue does for the pipeline. `apply`, `park`, `retryParked`, `storeCursor` and `mirrorSeqMap`
    /// are operations: the glue reports each one's outcome (`applied`/`applyFailed`, `parked`/`parkFailed`,
    /// `parkedRetried`/`parkedRetryFailed`, `cursorStored`/`cursorStoreFailed`,
    /// `seqMapMirrored`/`seqMapMirrorFailed`) before anything else happens. At most one operation is
    /// outstanding, and it is always the last action of a list.
    public enum Action: Equatable, Sendable {
        /// Send `subscribe` from this cursor to the broker.
        case subscribe(cursor: [DataMessage.Position])
        /// Send `credit` to the broker: it may deliver this many more frames.
        case grantCredit(UInt32)
        /// Send `applied` to the broker: JetStream may acknowledge through these positions (sent only after
        /// the database committed them).
        case acknowledge([DataMessage.Position])
        /// Decode the deliveries, leave out the node's own events its rows already hold, and apply the rest
        /// in one transaction that also stores `group.cursor` (no transaction when nothing is left to apply).
        case apply(ApplyGroup)
        /// Write the message to the dead-letter table and store `parking.group.cursor` (past it), in one
        /// transaction.
        case park(Parking)
        /// Apply the parked messages again in (stream, sequence) order: remove what applies, count another
        /// attempt on what still fails.
        case retryParked
        /// Store this cursor in the database on its own.
        case storeCursor(StreamCursor)
        /// Write the seq map file with this (stored) cursor.
        case mirrorSeqMap(StreamCursor)
        /// Something a person should know (log, and a status line where it says so).
        case report(Report)
        /// Stop the worker with `WorkerExit.restoreNeeded`: the stream no longer has what this node misses.
        case stopForRestore(SequenceGap)
        /// Stop the worker with `WorkerExit.restoreNeeded`: the stream is not the one the cursor belongs to.
        case stopForReplacedStream(StreamReplacement)
        /// Store these stream identities with the cursor (and in the seq map) now; nothing waits for it (a
        /// failure is logged, and they are recorded again at the next consumer start).
        case recordStreams([String: UInt64])
        /// Snapshots are off and the stream was replaced: store its cursor as 0 with its new identity (in one
        /// transaction, then the seq map) before anything else; a failure stops the worker.
        case restartStream(StreamReplacement)
    }

    /// Deliveries to apply in one transaction, and where the cursor is once they are.
    public struct ApplyGroup: Equatable, Sendable {
        /// Tells a group's outcome apart from a later group's.
        public var number: UInt64
        /// The deliveries not applied before, in arrival order (never empty).
        public var deliveries: [DataMessage.Delivery]
        /// The cursor once these are applied: to store in the same transaction.
        public var cursor: StreamCursor
        /// How many queued deliveries of each stream the group covers (its `deliveries` plus ones applied
        /// before), from the front of that stream's queue.
        var covered: [String: Int]
        /// The connection these deliveries came through.
        var connection: UInt64
    }

    /// A single delivery that cannot be applied, to park.
    public struct Parking: Equatable, Sendable {
        /// The delivery alone; its cursor is where the stream's cursor is once the message is parked.
        public var group: ApplyGroup
        public var failure: ApplyFailure
        /// Failed attempts before it was parked.
        public var attempts: Int

        public var delivery: DataMessage.Delivery { group.deliveries[0] }
    }

    public enum Report: Equatable, Sendable {
        /// A single delivery failed; its stream waits, retried after `retryIn` seconds and every time after.
        /// Reported once per distinct reason (log error and status line).
        case cannotApply(reason: String, retryIn: Double)
        /// Applying again after a failure (log info and status line).
        case applyingAgain(after: String)
        /// A message was parked (log warning with stream, sequence and reason).
        case parked(Parking)
        /// Parked messages were tried again (log info).
        case parkedRetried(applied: Int, remaining: Int)
        /// The dead-letter table could not be read or changed for a retry (log error).
        case parkedRetryFailed(reason: String)
        /// Delivered sequences jumped over messages the stream did not say are gone: consuming again from the
        /// cursor (log warning).
        case recheckingGap(SequenceGap)
        /// Messages are gone and snapshots are off: lost on this node (log error, once per stream).
        case messagesLost(SequenceGap)
        /// The stream was replaced and snapshots are off: consumed from its start (log error).
        case streamRestarted(StreamReplacement)
    }
}

/// Messages of a stream that are gone before this node applied them (limits, max_entries), as the stream
/// itself confirmed; before that, a jump is only a question (see `ApplyPipeline`).
public struct SequenceGap: Error, Equatable, Sendable, CustomStringConvertible {
    public var stream: String
    public var missing: ClosedRange<UInt64>

    public var description: String {
        "messages \(missing.lowerBound)…\(missing.upperBound) of \(stream) are gone from the stream before this node applied them"
    }
}

/// A shard stream that is not the one the cursor was recorded in: deleted and created again (by hand, or by
/// a broker after the only server of an R1 stream lost it). It starts over at sequence 1, so the cursor
/// means nothing there: consuming after it would silently skip the new stream's first messages.
public struct StreamReplacement: Error, Equatable, Sendable, CustomStringConvertible {
    public var stream: String
    /// The cursor's position in the old stream.
    public var position: UInt64
    /// Identities (JetStream's creation times, ns since 1970) of the old and the new stream.
    public var recorded: UInt64
    public var current: UInt64

    public var description: String {
        "\(stream) is not the stream this node's cursor (message \(position)) belongs to: it was deleted and created again, or lost with its only server "
            + "(created at \(current) ns, the cursor's at \(recorded) ns); what the old stream held past the cursor is not on this node"
    }
}
