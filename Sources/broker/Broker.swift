import HarmonyConfig
import IPC
import Logging
import NATSClient
import Signals
import WorkerRuntime

#if canImport(Glibc)
import Glibc
#endif

/// The node's one NATS client. For now it connects (embedded server or `nats.urls`, with credentials and
/// TLS from `[nats]`), reports ready once JetStream answers, and reports connection changes.
@main
struct Broker {
    static func main() throws {
        let runtime = WorkerRuntime.start(name: "broker")
        let config = runtime.configuration
        let logger = runtime.logger
        var settings = ConnectionSettings(urls: config.natsClientURLs, name: config.nodeName)
        settings.userName = config.nats.userName
        settings.userPassword = config.nats.userPassword
        settings.seedFile = config.nats.seedFile
        settings.caFile = config.nats.caFile
        settings.certFile = config.nats.certFile
        settings.keyFile = config.nats.keyFile
        settings.reconnectWaitSeconds = config.nats.reconnectWaitSeconds

        let redactedURLs = config.natsClientURLs.map(URLRedaction.redact).joined(separator: ", ")
        let connection: NATSConnection
        do {
            connection = try NATSConnection.connect(settings)
        } catch {
            logger.error("cannot connect to NATS: \(error)")
            exit(1)
        }
        let started = monotonicSeconds()
        // HarmonyLite's connect_retries attempts, reconnect_wait_seconds apart, bound the first connection.
        let connectBudget = Double(max(1, config.nats.connectRetries) * max(1, config.nats.reconnectWaitSeconds))
        var ready = false
        var wasConnected = false
        var jetStreamError = ""

        let reason = try runtime.run {
            let connected = connection.isConnected
            if connected != wasConnected {
                wasConnected = connected
                if connected {
                    logger.info("connected to NATS at \(redactedURLs)")
                } else if ready {
                    logger.warning("disconnected from NATS; reconnecting every \(config.nats.reconnectWaitSeconds) s")
                    try? runtime.reportStatus("NATS disconnected, reconnecting")
                }
            }
            if !connected && !ready && monotonicSeconds() - started > connectBudget {
                logger.error("could not connect to NATS at \(redactedURLs) within \(Int(connectBudget)) s (nats.connect_retries × nats.reconnect_wait_seconds)")
                exit(1)
            }
            if connected && !ready {
                do {
                    let account = try connection.checkJetStream()
                    ready = true
                    try runtime.reportReady("JetStream answering at \(redactedURLs) (\(account.streams) streams)")
                } catch {
                    if "\(error)" != jetStreamError {
                        jetStreamError = "\(error)"
                        logger.warning("waiting for JetStream: \(error)")
                        try? runtime.reportStatus("waiting for JetStream: \(error)")
                    }
                }
            }
            return [.init("nats_connected", connected ? 1 : 0)]
        }
        logger.info("stopping: \(reason)")
    }
}
