/// The resolved configuration of one node: HarmonyLite's TOML keys with its defaults, the command-line
/// overrides applied, and our own `[workers.<name>]` tables. The supervisor resolves it once and hands it to
/// every worker in the handshake, so all processes see the same values.
///
/// Property names are the TOML keys in camel case; `ConfigurationSchema` maps one to the other. Durations
/// keep HarmonyLite's units (milliseconds unless the key says seconds).
public struct Configuration: Codable, Equatable, Sendable {
    public var dbPath: String
    public var nodeID: UInt64
    public var seqMapPath: String
    public var publish = true
    public var replicate = true
    public var scanMaxChanges: UInt32 = 512
    public var cleanupInterval: UInt32 = 5000
    public var sleepTimeout: UInt32 = 0
    public var pollingInterval: UInt32 = 0
    /// The bound on clock offset between nodes, in milliseconds (CockroachDB's `--max-offset`): a remote
    /// stamp further ahead of this node's clock is applied but counted and logged, a snapshot holding one
    /// is refused, a local write stamped further ahead is clamped to the node's clock (docs/clocks.md).
    public var maxClockOffset: UInt32 = 500

    public var snapshot = Snapshot()
    public var replicationLog = ReplicationLog()
    public var nats = NATS()
    public var logging = Logging()
    public var prometheus = Prometheus()
    public var healthCheck = HealthCheck()
    public var workers = WorkerSettings.defaults

    /// What a node needs beyond a valid configuration to start (more JetStream replicas than the embedded
    /// cluster's servers can never be placed). Checked by the node's start and `-check-config`, not by the
    /// one-shot commands, which run without `-cluster-peers`.
    public func checkCanStart() throws(ConfigurationError) { try Validation.checkStart(self) }

    /// The kernel limits and restart policy of `role` (`[workers.<role>]`).
    public func settings(for role: WorkerRole) -> WorkerSettings { workers[role] ?? WorkerSettings() }

    /// From `-cluster-addr`: the embedded server's route listen address.
    public var clusterAddress = ""
    /// From `-cluster-peers`: route URLs of the other embedded servers.
    public var clusterPeers: [String] = []
    /// From `-leaf-servers`: leaf-node remote URLs.
    public var leafServers: [String] = []

    /// Where the broker connects: `nats.urls`, or the embedded server's client URL, which the supervisor
    /// fills in once that server listens.
    public var natsClientURLs: [String] = []
    /// With the embedded server: the credentials derived from the cluster secret, filled in by the
    /// supervisor (and the one-shot commands). Never read from TOML.
    public var embeddedCredentials: EmbeddedCredentials?
    /// The key snapshots are signed and checked with (64 hex digits), derived from the cluster secret by the
    /// supervisor (`ClusterSecret.snapshotSigningKey`); only the snapshotter receives it. Never read from TOML.
    public var snapshotSigningKey: String?

    public struct Snapshot: Codable, Equatable, Sendable {
        public var enabled = true
        public var interval: UInt32 = 0
        public var leaderTTL: UInt32 = 30000
        public var store = "nats"
        public var nats = NATSStore()
        public var s3 = S3Store()
        public var webdav = WebDAVStore()
        public var sftp = SFTPStore()
        /// Restore snapshots that carry no signature (saved by a version that did not sign): for an
        /// upgrade only; a badly signed snapshot is refused whatever this says.
        public var acceptUnsigned = false

        public static let stores = ["nats", "s3", "webdav", "sftp"]
    }

    public struct NATSStore: Codable, Equatable, Sendable {
        public var replicas = 1
        public var bucket = ""
    }

    public struct S3Store: Codable, Equatable, Sendable {
        public init() {}

        public var path = ""
        public var endpoint = ""
        public var accessKey = ""
        public var secret = ""
        public var sessionToken = ""
        public var bucket = ""
        public var useSSL = false
    }

    public struct WebDAVStore: Codable, Equatable, Sendable {
        public var url = ""
    }

    public struct SFTPStore: Codable, Equatable, Sendable {
        public var url = ""
    }

    public struct ReplicationLog: Codable, Equatable, Sendable {
        public var shards: UInt64 = 1
        public var maxEntries: Int64 = 1024
        /// As configured; `effectiveReplicas` applies HarmonyLite's rule for values below 1.
        public var replicas = 1
        public var compress = true
        public var updateExisting = false
        /// Name the shard streams as upstream HarmonyLite does: `<stream_prefix>-c-<n>` when `compress`
        /// (`shardStreamName`). For nodes joining, or taking over from, upstream nodes that compress.
        public var upstreamStreamNames = false
        /// Also publish every change in upstream HarmonyLite's format on the shared subject, for upstream
        /// nodes of a mixed cluster (a rolling upgrade); off once the last upstream node is gone.
        public var publishForUpstream = false

        /// HarmonyLite's rule: below 1 means a majority of the shard count, and never more than 5.
        public var effectiveReplicas: Int {
            let wanted = replicas < 1 ? Int(shards / 2 + 1) : replicas
            return min(wanted, 5)
        }
    }

    public struct NATS: Codable, Equatable, Sendable {
        public var urls: [String] = []
        public var subjectPrefix = "harmonylite-change-log"
        public var streamPrefix = "harmonylite-changes"
        public var serverConfig = ""
        public var seedFile = ""
        public var userName = ""
        public var userPassword = ""
        public var caFile = ""
        public var certFile = ""
        public var keyFile = ""
        /// The embedded server's client listen address. An empty host means loopback (HarmonyLite: every
        /// interface); write `0.0.0.0:4222` to listen everywhere. Port -1 picks a free one.
        public var bindAddress = ":-1"
        public var connectRetries = 5
        public var reconnectWaitSeconds = 2
        /// The embedded servers' shared secret, from which route and client passwords are derived: created
        /// (mode 0600) at the first start when missing, then copied to every node of the cluster. Empty:
        /// `harmonylite-cluster.secret` next to the database.
        public var clusterSecretFile = ""
        /// JetStream's file-storage limit on the embedded server, in bytes; 0: the default (10 GiB, or half
        /// the store's file system when that is smaller), so JetStream cannot fill the database's disk.
        public var maxFileStore: UInt64 = 0
        /// TLS for the embedded servers' routes (all three, or none): this node's certificate and key, and
        /// the CA every peer's certificate must chain to (verified both ways).
        public var routeTLSCertFile = ""
        public var routeTLSKeyFile = ""
        public var routeTLSCAFile = ""
        /// Without the TLS files above, routes run TLS with certificates the supervisor makes at start from
        /// the cluster secret (`RouteCertificates`); true turns that off: plaintext routes, which carry the
        /// route password and every change in clear (a network no one else can see).
        public var allowPlaintextRoutes = false
        /// `host:port` where the embedded server accepts leaf-node connections (the hub of the NATS guide's
        /// multi-region set-up); empty: none. Leaves authenticate with the leaf user derived from the
        /// cluster secret, which `-leaf-servers` sends.
        public var leafListen = ""
        /// This node's region (the NATS guide's multi-region set-up): the embedded servers of one region form
        /// one cluster (`e-harmonylite-<region>`) and one JetStream domain (`<region>`), joined to the other
        /// regions by leaf connections (`leaf_listen`, `-leaf-servers`). Empty: one region, as before.
        public var region = ""
        /// Every region's name (this one's may be left out): each region's shard streams take the others'
        /// changes from them (docs/operations.md, "Multi-region").
        public var regions: [String] = []

        /// True when the node runs its own nats-server.
        public var isEmbedded: Bool { urls.isEmpty }
    }

    public struct Logging: Codable, Equatable, Sendable {
        public var verbose = false
        public var format = "console"

        public static let formats = ["console", "json"]
    }

    public struct Prometheus: Codable, Equatable, Sendable {
        public var enable = false
        public var bind = ":3010"
        public var namespace = "harmonylite"
        public var subsystem = ""
    }

    public struct HealthCheck: Codable, Equatable, Sendable {
        public var enable = false
        public var bind = "0.0.0.0:8090"
        public var path = "/health"
        public var detailed = true
    }

    /// HarmonyLite's node name, also the NATS client name and the consumers' name prefix.
    public var nodeName: String { "harmonylite-node-\(nodeID)" }

    /// The embedded nats-server's name: `nodeName`, `<nodeName>-<region>` in a region. Regions meet across
    /// leaf connections, so a server name must be unique across all of them: a node started by mistake with
    /// another region's node id must not bring a second server of that name into the system.
    public var embeddedServerName: String { nats.region.isEmpty ? nodeName : nodeName + "-" + nats.region }

    /// The directory of the database: the root of the embedded server's JetStream store.
    public var dataRootDirectory: String { FilePaths.directory(of: dbPath) }

    /// The cluster secret file (`nats.cluster_secret_file`, default beside the database).
    public var clusterSecretPath: String {
        nats.clusterSecretFile.isEmpty ? dataRootDirectory + "/harmonylite-cluster.secret" : nats.clusterSecretFile
    }

    /// The embedded server's JetStream store: `<db dir>/nats/<node name>` as HarmonyLite.
    public var embeddedStoreDirectory: String { dataRootDirectory + "/nats/" + nodeName }

    public init(dbPath: String, nodeID: UInt64) {
        self.dbPath = dbPath
        self.nodeID = nodeID
        seqMapPath = FilePaths.directory(of: dbPath) + "/seq-map.cbor"
    }
}

extension Configuration {
    /// The name of shard stream `shard` (1-based): `<stream_prefix>-<shard>`; with
    /// `replication_log.upstream_stream_names` and `compress`, upstream HarmonyLite's `<stream_prefix>-c-<shard>`
    /// (it renames its streams when it compresses; our messages say whether they are compressed).
    public func shardStreamName(_ shard: UInt64) -> String {
        replicationLog.upstreamStreamNames && replicationLog.compress ? "\(nats.streamPrefix)-c-\(shard)" : "\(nats.streamPrefix)-\(shard)"
    }
}
