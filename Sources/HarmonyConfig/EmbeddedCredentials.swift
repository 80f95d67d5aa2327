/// What the embedded servers of one cluster authenticate with, all derived from the cluster secret
/// (`NATSClient.ClusterSecret`): the routes' user and password, shared by every server; this node's own
/// client user, which only this node's server knows; and the administrator, the same on every server,
/// which creates and upgrades streams and buckets; the leaf user (the supervisor's set-up only: no worker holds it, see
/// `Configuration.forWorker`). Never in TOML, never logged.
public struct EmbeddedCredentials: Codable, Equatable, Sendable {
    public var clientUser: String
    public var clientPassword: String
    public var routeUser: String
    public var routePassword: String
    public var adminUser: String
    public var adminPassword: String
    /// Leaf nodes: what `nats.leaf_listen` accepts and `-leaf-servers` sends (the same on every server).
    public var leafUser: String
    public var leafPassword: String

    public init(
        clientUser: String, clientPassword: String, routeUser: String, routePassword: String, adminUser: String = "", adminPassword: String = "",
        leafUser: String = "", leafPassword: String = ""
    ) {
        self.clientUser = clientUser
        self.clientPassword = clientPassword
        self.routeUser = routeUser
        self.routePassword = routePassword
        self.adminUser = adminUser
        self.adminPassword = adminPassword
        self.leafUser = leafUser
        self.leafPassword = leafPassword
    }

    /// The node user's credentials alone: what a worker that talks to NATS receives.
    public var nodeOnly: EmbeddedCredentials {
        EmbeddedCredentials(clientUser: clientUser, clientPassword: clientPassword, routeUser: routeUser, routePassword: "")
    }
}
