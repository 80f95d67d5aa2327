/// The children a node runs, in start order: the embedded nats-server (when `[nats] urls` is empty) and the
/// four workers. The one name for each, used by the configuration (`[workers.<role>]`), spawning, the
/// handshake, telemetry and logs; the raw value is that name.
public enum WorkerRole: String, CaseIterable, Codable, CodingKeyRepresentable, Comparable, Sendable, CustomStringConvertible {
    case nats, broker, snapshotter, applier, capturer

    /// The executable's name: `nats-server` (found on the PATH) or `harmonylite-<role>` beside the supervisor.
    public var executableName: String { self == .nats ? "nats-server" : "harmonylite-" + rawValue }

    /// Whether it speaks our control protocol (every worker; not nats-server).
    public var speaksControlProtocol: Bool { self != .nats }

    /// The child that restores snapshots: an in-place restore stops it and every child after it.
    public var restoresSnapshots: Bool { self == .snapshotter }

    /// Its life signs are answers to a monitoring probe the supervisor sends, not heartbeats.
    public var livenessProbed: Bool { self == .nats }

    public var description: String { rawValue }

    public static func < (lhs: WorkerRole, rhs: WorkerRole) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// Where a child is in its life, as `/health`, `-status` and `/metrics` show it; the raw value is the word
/// they print.
public enum WorkerState: String, Codable, Sendable, CustomStringConvertible {
    /// Started and ready.
    case running
    /// Started, not ready yet.
    case starting
    /// Asked to stop, not exited yet.
    case stopping
    /// Exited; waiting for its restart backoff.
    case restarting
    /// Not started (or stopped for good).
    case stopped

    public var description: String { rawValue }
}
