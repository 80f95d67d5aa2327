import Foundation
import HarmonyConfig
import NATSClient

/// How a test reaches a node's embedded server, which accepts only credentials derived from the cluster
/// secret (default `harmonylite-cluster.secret` beside the database): as node `nodeID` would.
func embeddedClientSettings(directory: String, nodeID: UInt64, port: some CustomStringConvertible, name: String) throws -> ConnectionSettings {
    let secret = try ClusterSecret.load(at: directory + "/harmonylite-cluster.secret")
    let credentials = ClusterSecret.credentials(secret: secret, nodeID: nodeID)
    var settings = ConnectionSettings(urls: ["nats://127.0.0.1:\(port)"], name: name)
    settings.userName = credentials.clientUser
    settings.userPassword = credentials.clientPassword
    settings.ignoreDiscoveredServers = true
    return settings
}

extension TestCluster {
    /// Node `index`'s own client credentials on its own server.
    func clientSettings(_ index: Int, name: String) throws -> ConnectionSettings {
        try embeddedClientSettings(directory: directory.path, nodeID: UInt64(index + 1), port: clientPorts[index], name: name)
    }
}
