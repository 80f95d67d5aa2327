import Foundation
import HarmonyConfig

/// Everything `-status` prints and `/health` reports besides its database checks: the supervisor's loop
/// makes one every tick and hands it to the HTTP thread and to `-status` clients. JSON keys are snake_case.
public struct NodeView: Codable, Sendable, Equatable {
    public var nodeId: UInt64
    public var version: String
    public var phase: String
    public var startedAtUnixMs: Int64
    public var uptimeSeconds: Double
    public var workers: [Worker]
    public var natsConnected: Bool
    public var natsServers: [String]
    public var streams: [Stream]
    public var tablesTracked: Int64?
    public var pendingPublish: Int64?
    public var parkedMessages: Int64?
    /// Totals since the supervisor started (across worker restarts).
    public var publishedRows: Int64
    public var appliedRows: Int64
    public var conflicts: Int64
    public var publishRetries: Int64
    public var lastPublishedUnixMs: Int64?
    public var lastAppliedUnixMs: Int64?
    public var snapshot: Snapshot
    public var sleepTimeoutSeconds: Double?
    /// The bound on time (`max_clock_offset`) and what this node saw of other nodes' clocks; nil from a
    /// node that does not report it.
    public var clock: Clock? = nil
    /// The embedded nats-server's monitoring endpoint (`http://host:port`), where `-status` reads its
    /// routes and JetStream peers; nil with external NATS or before the server is up.
    public var natsMonitoring: String? = nil

    public struct Clock: Codable, Sendable, Equatable {
        public var maxOffsetMs: Int64
        /// Remote changes stamped beyond this node's `now + max offset`, applied all the same (since start).
        public var futureStamps: Int64
        /// Local writes whose application clock ran ahead of the node's beyond the bound, clamped (since start).
        public var clampedLocalStamps: Int64
        /// The node whose stamps run farthest ahead of this node's clock, and by how much (an estimate: the
        /// newest stamps' times minus their arrival times), while current.
        public var aheadOrigin: UInt64?
        public var aheadMs: Int64?

        public init(maxOffsetMs: Int64, futureStamps: Int64, clampedLocalStamps: Int64, aheadOrigin: UInt64?, aheadMs: Int64?) {
            self.maxOffsetMs = maxOffsetMs
            self.futureStamps = futureStamps
            self.clampedLocalStamps = clampedLocalStamps
            self.aheadOrigin = aheadOrigin
            self.aheadMs = aheadMs
        }

        /// This node's clock is behind another node's by more than the bound (or that node's runs ahead).
        public var isBehind: Bool { (aheadMs ?? 0) > maxOffsetMs }

        /// What `/health` and `-status` say when the clock is behind; nil when it is not.
        public var warning: String? {
            guard isBehind, let aheadMs, let aheadOrigin else { return nil }
            return "clock: this node's clock is \(aheadMs) ms behind node \(aheadOrigin)'s, beyond max_clock_offset (\(maxOffsetMs) ms)"
        }
    }

    public struct Worker: Codable, Sendable, Equatable {
        public var name: WorkerRole
        public var state: WorkerState
        public var pid: Int32?
        public var restarts: Int
        public var uptimeSeconds: Double?
        public var residentBytes: Int64?
        public var cpuSeconds: Double?
        /// What the worker waits for, when it waits for more than a moment: "waiting for the database write
        /// lock for 35 s" (an application transaction holds it). Degraded, not stopped: it goes on once it is had.
        public var waitingFor: String?

        public init(
            name: WorkerRole, state: WorkerState, pid: Int32?, restarts: Int, uptimeSeconds: Double?, residentBytes: Int64?, cpuSeconds: Double?,
            waitingFor: String? = nil
        ) {
            self.name = name
            self.state = state
            self.pid = pid
            self.restarts = restarts
            self.uptimeSeconds = uptimeSeconds
            self.residentBytes = residentBytes
            self.cpuSeconds = cpuSeconds
            self.waitingFor = waitingFor
        }

        /// Whether a worker's status line is a long wait ("still waiting for X (N s): cause", "waiting for
        /// …"): the supervisor shows it in `STATUS=` and `-status` until the worker is ready or says otherwise.
        public static func isWait(_ status: String) -> Bool {
            status.hasPrefix("still waiting for ") || status.hasPrefix("waiting for ")
        }

        /// `waitingFor` for a worker whose last heartbeat reported `database_wait_ms` = `milliseconds`.
        public static func waitingFor(databaseWaitMilliseconds milliseconds: Int64?) -> String? {
            guard let milliseconds, milliseconds > 0 else { return nil }
            return "waiting for the database write lock for \(milliseconds / 1000) s"
        }
    }

    public struct Stream: Codable, Sendable, Equatable {
        public var name: String
        public var lastSequence: UInt64?
        /// The last sequence this node applied.
        public var cursor: UInt64?
        /// `lastSequence - cursor` when both are known.
        public var behind: UInt64?
        /// Mean commit-to-apply lag of the newest applied changes of this stream (seconds).
        public var lagSeconds: Double?
        /// How long the stream has held messages past the cursor without the cursor moving, once that is
        /// `ShardStallWatch.threshold` or more (nil: it progresses or is caught up).
        public var stalledSeconds: Double?

        public init(name: String, lastSequence: UInt64?, cursor: UInt64?, behind: UInt64?, lagSeconds: Double?, stalledSeconds: Double? = nil) {
            self.name = name
            self.lastSequence = lastSequence
            self.cursor = cursor
            self.behind = behind
            self.lagSeconds = lagSeconds
            self.stalledSeconds = stalledSeconds
        }
    }

    public struct Snapshot: Codable, Sendable, Equatable {
        public var enabled: Bool
        /// Whether this node holds the snapshot lease (it saves the cluster's snapshots).
        public var leaseHeldHere: Bool?
        public var createdUnixMs: Int64?
        public var ageSeconds: Double?
        public var sizeBytes: Int64?
        public var durationSeconds: Double?
        public var saved: Int64
        public var restored: Int64

        public init(
            enabled: Bool, leaseHeldHere: Bool?, createdUnixMs: Int64?, ageSeconds: Double?, sizeBytes: Int64?, durationSeconds: Double?, saved: Int64,
            restored: Int64
        ) {
            self.enabled = enabled
            self.leaseHeldHere = leaseHeldHere
            self.createdUnixMs = createdUnixMs
            self.ageSeconds = ageSeconds
            self.sizeBytes = sizeBytes
            self.durationSeconds = durationSeconds
            self.saved = saved
            self.restored = restored
        }
    }

    public var isRunning: Bool { workers.allSatisfy { $0.state == .running } }

    public func json(pretty: Bool = false) -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys]
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? "{}"
    }

    public static func decode(json: String) throws -> NodeView {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(NodeView.self, from: Data(json.utf8))
    }

    public init(
        nodeId: UInt64, version: String, phase: String, startedAtUnixMs: Int64, uptimeSeconds: Double, workers: [Worker], natsConnected: Bool,
        natsServers: [String], streams: [Stream], tablesTracked: Int64?, pendingPublish: Int64?, parkedMessages: Int64?, publishedRows: Int64,
        appliedRows: Int64, conflicts: Int64, publishRetries: Int64, lastPublishedUnixMs: Int64?, lastAppliedUnixMs: Int64?, snapshot: Snapshot,
        sleepTimeoutSeconds: Double?
    ) {
        self.nodeId = nodeId
        self.version = version
        self.phase = phase
        self.startedAtUnixMs = startedAtUnixMs
        self.uptimeSeconds = uptimeSeconds
        self.workers = workers
        self.natsConnected = natsConnected
        self.natsServers = natsServers
        self.streams = streams
        self.tablesTracked = tablesTracked
        self.pendingPublish = pendingPublish
        self.parkedMessages = parkedMessages
        self.publishedRows = publishedRows
        self.appliedRows = appliedRows
        self.conflicts = conflicts
        self.publishRetries = publishRetries
        self.lastPublishedUnixMs = lastPublishedUnixMs
        self.lastAppliedUnixMs = lastAppliedUnixMs
        self.snapshot = snapshot
        self.sleepTimeoutSeconds = sleepTimeoutSeconds
    }
}
