import Logging
import Supervision

extension Logger {
    /// The one place `EmbeddedServerMachine`'s reports become log lines: constant messages, the particulars
    /// in metadata.
    func log(_ report: EmbeddedServerMachine.Report) {
        let request: Logger.MetadataValue = "GET \(EmbeddedServerProbe.path)"
        switch report {
        case .notProbed:
            warning(
                """
                the embedded nats-server names no monitoring port in its ports file (http turned off in nats.server_config?): \
                its liveness is not probed, a wedged server is not restarted
                """)
        case .answersAgain:
            info("the embedded nats-server answers its liveness probe again")
        case .jetStreamDisabled:
            error(
                """
                the embedded nats-server reports JetStream disabled on it (nats-server disables it when its store runs out of space, \
                and never enables it again); it is restarted once silent for [workers.nats] heartbeat_timeout
                """, metadata: ["request": request])
        case .malformedAnswer(let reason):
            warning("the embedded nats-server's monitoring answer is not HTTP", metadata: ["request": request, "reason": "\(reason)"])
        case .probeFailed(let address, let reason):
            warning(
                "probing the embedded nats-server failed",
                metadata: ["request": request, "address": "\(address.host):\(address.port)", "reason": "\(reason)"])
        case .unanswered(let timeout):
            warning(
                """
                the embedded nats-server does not answer its liveness probe (wedged?); \
                it is restarted once silent for [workers.nats] heartbeat_timeout
                """, metadata: ["request": request, "waited_seconds": "\(timeout)"])
        case .storeSpace(let check, let path, let freeBytes, let full):
            let why = check == .killing ? "killing the embedded nats-server" : "the embedded nats-server does not answer"
            let metadata: Logger.Metadata = ["why": "\(why)", "path": "\(path)", "free_kib": "\(freeBytes / 1024)"]
            if full {
                error(
                    """
                    the disk of the embedded nats-server's JetStream store is full (nats-server 2.9 can deadlock a stream when a store write \
                    fails for lack of space; restarting the server recovers it)
                    """, metadata: metadata)
            } else {
                warning("free space of the embedded nats-server's JetStream store", metadata: metadata)
            }
        case .disk(.full(let holding, let path, let freeBytes)):
            error(
                """
                disk full: SQLite refuses writes there (the application gets 'database or disk is full'; what was committed is captured \
                and kept), the applier retries; an embedded nats-server whose store write fails can wedge, and is restarted once it has \
                not answered its liveness probe for [workers.nats] heartbeat_timeout
                """, metadata: ["holding": "\(holding.rawValue)", "path": "\(path)", "free_kib": "\(freeBytes / 1024)"])
        case .waitingForMetaLeader(let reason):
            warning(
                """
                the embedded nats-server is not current with the JetStream meta leader yet: the node is not ready until it is \
                (in a rolling upgrade or restart, do not stop the next node meanwhile)
                """, metadata: ["request": "GET \(EmbeddedServerProbe.metaCurrencyPath)", "reason": "\(reason)"])
        case .metaCurrent(let waited):
            info("the embedded nats-server is current with the JetStream meta leader", metadata: ["waited_s": "\(String(format: "%.2f", waited))"])
        case .disk(.recovered(let holding, let path, let freeBytes)):
            info("disk space is back", metadata: ["holding": "\(holding.rawValue)", "path": "\(path)", "free_kib": "\(freeBytes / 1024)"])
        }
    }
}
