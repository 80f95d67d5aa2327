import HarmonyConfig
import IPC

/// The supervisor's check of a worker's hello, as a value: which child it is, or why it is refused. A worker
/// is accepted when it speaks our control protocol's version, names a role that speaks the protocol, and is
/// the process the supervisor started for that role (the peer's pid from `SO_PEERCRED`).
public enum WorkerHandshake {
    public enum Refusal: Error, Equatable, Sendable, CustomStringConvertible {
        /// Another version of the control protocol (workers of another build).
        case protocolVersion(UInt16)
        /// A name no role has, or nats-server's.
        case unknownRole(String)
        /// No child of that role with this pid was started by this supervisor.
        case notStartedHere(role: WorkerRole, pid: Int32)

        /// What the worker is told.
        public var description: String {
            switch self {
            case .protocolVersion(let version):
                "control protocol \(version) is not spoken here (\(ControlMessage.protocolVersion) is)"
            case .unknownRole(let name):
                "no worker is called \"\(name)\"; the workers are "
                    + WorkerRole.allCases.filter(\.speaksControlProtocol).map(\.rawValue).joined(separator: ", ")
            case .notStartedHere(let role, let pid):
                "no worker \"\(role)\" with pid \(pid) was started by this supervisor"
            }
        }
    }

    /// - Parameters:
    ///   - hello: what the worker sent first.
    ///   - peer: the connecting process's pid, as the kernel says.
    ///   - started: the pid the supervisor started for a role, if it runs one.
    public static func check(_ hello: ControlMessage.Hello, peer: Int32, started: (WorkerRole) -> Int32?) -> Result<WorkerRole, Refusal> {
        guard hello.protocolVersion == ControlMessage.protocolVersion else { return .failure(.protocolVersion(hello.protocolVersion)) }
        guard let role = WorkerRole(rawValue: hello.worker), role.speaksControlProtocol else { return .failure(.unknownRole(hello.worker)) }
        guard started(role) == peer else { return .failure(.notStartedHere(role: role, pid: peer)) }
        return .success(role)
    }
}
