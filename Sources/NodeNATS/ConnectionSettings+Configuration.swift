import HarmonyConfig
import NATSClient
import NKeys

extension ConnectionSettings {
    /// The node's NATS connection settings from its configuration: URLs, credentials, TLS files. One
    /// attempt never outlasts half of `heartbeatTimeout` (ms), so connecting never looks like a hang.
    public init(configuration config: Configuration, name: String, heartbeatTimeout: UInt32) throws {
        self.init(urls: config.natsClientURLs, name: name)
        userName = config.nats.userName
        userPassword = config.nats.userPassword
        seedFile = config.nats.seedFile
        caFile = config.nats.caFile
        certFile = config.nats.certFile
        keyFile = config.nats.keyFile
        reconnectWaitSeconds = config.nats.reconnectWaitSeconds
        connectTimeoutMilliseconds = Int64(min(2000, heartbeatTimeout / 2))
        if !config.nats.seedFile.isEmpty {
            nkeyPublicKey = try NKeySeed(contentsOf: config.nats.seedFile).publicKey
        }
        // The embedded server: this node's own user, derived from the cluster secret (no TLS on loopback).
        if config.nats.isEmbedded, let embedded = config.embeddedCredentials {
            userName = embedded.clientUser
            userPassword = embedded.clientPassword
            seedFile = ""
            nkeyPublicKey = ""
            caFile = ""
            certFile = ""
            keyFile = ""
            ignoreDiscoveredServers = true
        }
    }
}
