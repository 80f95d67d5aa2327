/// What the glue asks the planner about, and what it tells the planner back.

/// The two kinds of background work.
public enum JobKind: Equatable, Sendable { case restore, save }

/// One answer to taking or renewing the snapshot lease.
public enum LeaseAnswer: Equatable, Sendable {
    /// JetStream says this node holds it (taken or renewed).
    case held
    /// Another node holds it.
    case heldByAnother
    /// No answer (a JetStream leader election, say): the lease keeps its revision, and the next renewal's
    /// compare-and-set tells whether it is still ours.
    case unanswered(String)
}

/// Why the restore decision could not be made.
public struct RestoreDecisionError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// JetStream did not answer for a shard stream: deciding without it could miss a gap; retried.
        case streamsUnanswered
        /// The database or its cursor cannot be read: the worker stops.
        case localStateUnreadable
    }

    public var kind: Kind
    public var detail: String

    public init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    public var description: String { detail }
}

/// What a finished job has to tell: its account of the snapshot (said after the report's message:
/// `PlannerReport.saved`, `ReadyReason.restored`), and the cursor of the snapshot it saved or restored (a
/// restore without one: the store had no snapshot yet).
public struct JobReport: Equatable, Sendable {
    /// The job's account of the snapshot: size, timings, cursor (and for a restore whose it was and what
    /// local changes it kept).
    public var summary: String
    public var cursor: [String: UInt64]?
    /// The snapshot saved or restored, for /metrics: when it was taken (ms since 1970), its size, and how
    /// long the job took (s).
    public var snapshot: (createdAt: Int64, size: Int64, seconds: Double)?
    /// The summary's values one by one (bytes, seconds, cursor, counts), for the log line's metadata.
    public var fields: [String: String]

    public init(
        summary: String, cursor: [String: UInt64]?, snapshot: (createdAt: Int64, size: Int64, seconds: Double)? = nil, fields: [String: String] = [:]
    ) {
        self.summary = summary
        self.cursor = cursor
        self.snapshot = snapshot
        self.fields = fields
    }

    public static func == (a: JobReport, b: JobReport) -> Bool {
        a.summary == b.summary && a.cursor == b.cursor && a.snapshot?.createdAt == b.snapshot?.createdAt && a.snapshot?.size == b.snapshot?.size
            && a.snapshot?.seconds == b.snapshot?.seconds && a.fields == b.fields
    }
}

/// Why a job failed.
public struct JobFailure: Error, Equatable, Sendable, CustomStringConvertible {
    public var description: String
    /// The restore refused the store's snapshot (not signed by this cluster, or not matching its signed
    /// metadata): not a failure of this node, which looks for another snapshot later.
    public var refusedSnapshot: Bool
    /// The restore found no disk space for itself (`RestoreNoSpace`): retrying cannot help until an operator
    /// frees space, so the start is refused.
    public var diskFull: Bool
    public init(description: String, refusedSnapshot: Bool = false, diskFull: Bool = false) {
        self.description = description
        self.refusedSnapshot = refusedSnapshot
        self.diskFull = diskFull
    }
}
