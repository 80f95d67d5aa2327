/// What the embedded servers of one cluster authenticate with, all derived from the cluster secret
/// (`NATSClient.ClusterSecret`): the routes' user and password, shared by every server, and this node's
/// own client user, which only this node's server knows. Never in TOML, never logged.
public struct EmbeddedCredentials: Codable, Equatable, Sendable {
    public var clientUser: String
    public var clientPassword: String
    public var routeUser: String
    public var routePassword: String

    public init(clientUser: String, clientPassword: String, routeUser: String, routePassword: String) {
        self.clientUser = clientUser
        self.clientPassword = clientPassword
        self.routeUser = routeUser
        self.routePassword = routePassword
    }
}
