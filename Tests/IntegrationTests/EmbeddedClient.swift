import Foundation
import HarmonyConfig
import NATSClient
import NodeNATS

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

/// The administrator (`harmonylite-admin`, every permission) on a node's embedded server: what the
/// supervisor's set-up uses to create streams, which the node's own user may not.
func embeddedAdministratorSettings(directory: String, port: some CustomStringConvertible, name: String) throws -> ConnectionSettings {
    var settings = try embeddedClientSettings(directory: directory, nodeID: 1, port: port, name: name)
    let credentials = ClusterSecret.credentials(secret: try ClusterSecret.load(at: directory + "/harmonylite-cluster.secret"), nodeID: 1)
    settings.userName = credentials.adminUser
    settings.userPassword = credentials.adminPassword
    return settings
}

extension TestCluster {
    /// Node `index`'s own client credentials on its own server.
    func clientSettings(_ index: Int, name: String) throws -> ConnectionSettings {
        try embeddedClientSettings(directory: directory.path, nodeID: UInt64(index + 1), port: clientPorts[index], name: name)
    }
}
