import HarmonyConfig
import IPC
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Why a worker stops on its own, with the exit status the supervisor acts on. Services throw it; only
/// `WorkerRuntime.main` exits.
public enum WorkerExit: Error, CustomStringConvertible {
    /// A stream no longer holds changes this node has not applied (`WorkerExitCode.restoreNeeded`).
    case restoreNeeded(String)
    /// The worker cannot do its job (status 1: the supervisor restarts it with backoff).
    case failed(String)
    /// The node must not start, and restarting cannot help (`WorkerExitCode.refused`).
    case refused(String)

    public var status: Int32 {
        switch self {
        case .restoreNeeded: WorkerExitCode.restoreNeeded
        case .failed: 1
        case .refused: WorkerExitCode.refused
        }
    }

    public var description: String {
        switch self {
        case .restoreNeeded(let reason), .failed(let reason), .refused(let reason): reason
        }
    }
}

extension WorkerRuntime {
    /// A worker process from start to exit: connect to the supervisor, make the handler, run the loop, drain
    /// on a normal stop. Every exit of a worker process goes through here.
    public static func main<Handler: WorkerLoopHandler>(role: WorkerRole, _ makeHandler: (WorkerRuntime) throws -> Handler) -> Never {
        let runtime = WorkerRuntime.start(role: role)
        let handler: Handler
        do {
            handler = try makeHandler(runtime)
        } catch {
            runtime.logger.error("cannot start", metadata: ["error": "\(error)"])
            // The supervisor says it again with the exit, so the line the node stops on names the problem.
            try? runtime.reportStatus(ControlMessage.cannotStartPrefix + "\(error)")
            exit((error as? WorkerExit)?.status ?? 1)
        }
        do {
            let reason = try runtime.run(handler)
            runtime.logger.info("stopping", metadata: ["reason": "\(reason)"])
            runtime.beginStopping()
            try handler.drain(reason: reason)
            exit(0)
        } catch let stop as WorkerExit {
            runtime.logger.error("stopping", metadata: ["error": "\(stop)"])
            try? runtime.reportStatus(ControlMessage.stoppingPrefix + "\(stop)")
            runtime.beginStopping()
            try? handler.drain()
            exit(stop.status)
        } catch {
            runtime.logger.error("stopping after an error", metadata: ["error": "\(error)"])
            exit(1)
        }
    }
}
