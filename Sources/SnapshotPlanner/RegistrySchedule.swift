/// The schema of the local database as the registry records it: its hash and replicated tables.
public struct LocalSchema: Equatable, Sendable {
    public var hash: String
    public var tables: [String]

    public init(hash: String, tables: [String]) {
        self.hash = hash
        self.tables = tables
    }
}

/// The registry's timing: the local schema is read every `schemaReadInterval`; the node's entry is written
/// when the schema differs from the one last written, and otherwise every `refreshInterval` so the
/// bucket's TTL never ages it out; a failed write is tried again after `retryAfterFailedWrite`.
struct RegistrySchedule: Equatable, Sendable {
    static let schemaReadInterval = 2.0
    static let refreshInterval = 30.0
    static let retryAfterFailedWrite = 5.0
    static let connectRetryInterval = 1.0

    /// NATS is connected (the planner's connection is the registry's too).
    var connected = false
    /// With snapshots disabled the planner connects for the registry alone.
    var nextConnect = 0.0
    var nextSchemaRead = 0.0
    /// When the entry is due again even with the schema unchanged; nil: nothing written yet.
    var nextRefresh: Double?
    var written: LocalSchema?
    /// The hash written before the current one changed, if it did since start.
    var previousHash: String?
    /// Problem last logged, so each is logged once until it changes.
    var lastProblem: PlannerReport?
}
