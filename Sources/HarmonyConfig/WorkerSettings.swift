/// One `[workers.<name>]` table: the kernel limits and restart policy of one child process.
public struct WorkerSettings: Codable, Equatable, Sendable {
    /// RLIMIT_AS in bytes; 0 keeps the inherited limit. Counts address space, not resident memory.
    public var memoryLimit: UInt64 = 0
    /// RLIMIT_NOFILE; 0 keeps the inherited limit.
    public var openFiles: UInt64 = 0
    /// Scheduling niceness, -20...19; nil keeps the inherited value.
    public var nice: Int? = nil
    /// First restart delay after a crash; doubles per consecutive crash up to `restartBackoffMax`.
    public var restartBackoffInitial: UInt32 = 250
    public var restartBackoffMax: UInt32 = 30000
    /// At most this many restarts within `restartPeriodSeconds`; one more stops the whole node
    /// (exit non-zero) so that systemd's own restart policy takes over.
    public var restartIntensity: UInt32 = 5
    public var restartPeriodSeconds: UInt32 = 60
    /// A worker silent for this long is considered hung: it is killed and restarted.
    public var heartbeatTimeout: UInt32 = 5000
    /// How long a worker may take to drain after being asked to stop before it is killed.
    public var stopTimeout: UInt32 = 10000

    public init() {}

    /// Heartbeats are sent four times per timeout, so one late heartbeat is never fatal.
    public var heartbeatInterval: UInt32 { max(heartbeatTimeout / 4, 10) }

    /// The embedded nats-server's life signs are answers to a monitoring probe (`EmbeddedServerProbe`), not
    /// heartbeats: it gets longer before it counts as hung (a big JetStream catch-up can slow its answers).
    public static let natsHeartbeatTimeout: UInt32 = 20000

    public static var defaults: [WorkerRole: WorkerSettings] {
        Dictionary(
            uniqueKeysWithValues: WorkerRole.allCases.map { role in
                var settings = WorkerSettings()
                if role == .nats { settings.heartbeatTimeout = natsHeartbeatTimeout }
                return (role, settings)
            })
    }
}
