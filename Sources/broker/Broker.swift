import HarmonyConfig
import IPC
import Logging
import NATSClient
import NKeys
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
        if !config.nats.seedFile.isEmpty {
            do {
                settings.nkeyPublicKey = try NKeySeed(contentsOf: config.nats.seedFile).publicKey
            } catch {
                logger.error("nats.seed_file \(config.nats.seedFile): \(error)")
                exit(1)
            }
        }
        settings.caFile = config.nats.caFile
        settings.certFile = config.nats.certFile
        settings.keyFile = config.nats.keyFile
        settings.reconnectWaitSeconds = config.nats.reconnectWaitSeconds

        // One attempt never outlasts half a heartbeat timeout, so connecting never looks like a hang.
        settings.connectTimeoutMilliseconds = Int64(min(2000, config.workers["broker", default: WorkerSettings()].heartbeatTimeout / 2))
        let redactedURLs = config.natsClientURLs.map(URLRedaction.redact).joined(separator: ", ")
        // HarmonyLite's connect_retries attempts, reconnect_wait_seconds apart, bound the first connection;
        // after it libnats reconnects forever.
        let maximumAttempts = max(1, config.nats.connectRetries)
        var attempts = 0
        var nextAttempt = monotonicSeconds()
        var connection: NATSConnection?
        var ready = false
        var wasConnected = false
        var jetStreamError = ""

        let reason = try runtime.run {
            if connection == nil, monotonicSeconds() >= nextAttempt {
                attempts += 1
                do {
                    connection = try NATSConnection.connect(settings)
                } catch {
                    logger.warning("connecting to NATS at \(redactedURLs), attempt \(attempts) of \(maximumAttempts): \(error)")
                    guard attempts < maximumAttempts else {
                        logger.error("could not connect to NATS at \(redactedURLs) in \(maximumAttempts) attempts (nats.connect_retries): \(error)")
                        exit(1)
                    }
                    try? runtime.reportStatus("connecting to NATS: \(error)")
                    nextAttempt = monotonicSeconds() + Double(max(1, config.nats.reconnectWaitSeconds))
                }
            }
            guard let connection else { return [.init("nats_connected", 0)] }
            let connected = connection.isConnected
            if connected != wasConnected {
                wasConnected = connected
                if connected {
                    logger.info("connected to NATS at \(redactedURLs)")
                } else {
                    logger.warning("disconnected from NATS; reconnecting every \(config.nats.reconnectWaitSeconds) s")
                    try? runtime.reportStatus("NATS disconnected, reconnecting")
                }
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
