import BrokerCore
import Foundation
import HarmonyConfig
import SchemaRegistry

/// The nats-server configuration file the supervisor writes for the embedded server, from the node's
/// configuration: what HarmonyLite set up in-process, expressed for Debian's real nats-server.
public enum EmbeddedServerConfig {
    /// HarmonyLite's cluster name for embedded servers.
    public static let clusterName = "e-harmonylite"

    /// The cluster name of the node's embedded server: `e-harmonylite`, `e-harmonylite-<region>` in a region
    /// (two clusters joined by a leaf connection must be named apart: nats-server refuses a leaf from a
    /// cluster of its own name).
    public static func clusterName(_ config: Configuration) -> String {
        config.nats.region.isEmpty ? clusterName : clusterName + "-" + config.nats.region
    }

    /// What no leaf connection carries in a region: the change subjects (each region's own stream takes its
    /// publishes, the other regions source that stream) and the buckets' (`$KV.>`, `$O.>`: the schema
    /// registry, the snapshot lease and the snapshot store are each region's own). Without it a stream of
    /// the other region would store a publish too, and answer it.
    static func regionLocalSubjects(_ config: Configuration) -> [String] {
        (1...max(1, config.replicationLog.shards)).flatMap { ChangeSubjects.streamSubjects(prefix: config.nats.subjectPrefix, shard: $0) }
            + ["$KV.>", "$O.>"]
    }
    /// The embedded server's name at this start: the one recorded in its JetStream store (`serverNameFile`)
    /// when that is this node's (`harmonylite-node-<id>` or `harmonylite-node-<id>-<region>`); a store in use
    /// without a record is an older version's, which named the server `harmonylite-node-<id>`: that name is
    /// kept (the store's JetStream peers know the server by it: renamed, a replicated region's streams went
    /// offline); otherwise `embeddedServerName`. The record is untrusted bytes: bounded and checked.
    public static func serverName(_ config: Configuration, recorded: String?, storeInUse: Bool) -> String {
        if let recorded {
            let name = recorded.trimmingCharacters(in: .whitespacesAndNewlines)
            let suffix = name.hasPrefix(config.nodeName + "-") ? String(name.dropFirst(config.nodeName.count + 1)) : nil
            if name == config.nodeName || suffix.map(Configuration.isRegionName) == true { return name }
        }
        return storeInUse ? config.nodeName : config.embeddedServerName
    }

    /// The file in the embedded store directory that records the server's name.
    public static let serverNameFile = "server-name"

    /// Where the embedded server's monitoring endpoint listens: loopback, a port of the kernel's choosing.
    public static let monitoringListen = "127.0.0.1:-1"

    /// - Parameters:
    ///   - runDirectory: where nats-server writes its ports file (how the supervisor learns a random port).
    ///   - clientPort: the port to listen on; nil uses `nats.bind_address`'s (-1 = any free port). After the
    ///     first start the supervisor pins the port it got, so a restarted server keeps its URL.
    ///   - nkeyPublicKey: the public key of `nats.seed_file`, authorized as a user.
    ///   - credentials: from the cluster secret: this node's client user (the only user without
    ///     `nats.user_name`/`seed_file`) and the routes' user; nil only in tests of the other parts.
    ///   - maxFileStore: JetStream's file-storage limit in bytes.
    ///   - monitoringInServerConfig: `nats.server_config` places the monitoring endpoint itself
    ///     (`ServerConfigKeys.setsMonitoring`): ours is left out, so the operator's is the only one.
    ///   - serverName: from `serverName(_:recorded:storeInUse:)`; nil: `embeddedServerName`.
    public static func render(
        _ config: Configuration, runDirectory: String, clientPort: Int? = nil, nkeyPublicKey: String? = nil,
        credentials: EmbeddedCredentials? = nil, maxFileStore: UInt64? = nil, monitoringInServerConfig: Bool = false,
        serverName: String? = nil
    ) -> String {
        let bind = HostPort(parsing: config.nats.bindAddress) ?? HostPort(parsing: ":-1")!
        var lines = [
            "# Written by harmonylite at every start; edit the node's TOML (or nats.server_config) instead.",
            "server_name: \(quote(serverName ?? config.embeddedServerName))",
            "host: \(quote(bind.host.isEmpty ? "127.0.0.1" : bind.host))",
            "port: \(clientPort ?? bind.port)",
            "ports_file_dir: \(quote(runDirectory))",
        ]
        if !monitoringInServerConfig {
            // The supervisor's liveness probe (`EmbeddedServerProbe`): loopback only, a random port (in the ports file).
            lines.append("http: \(quote(monitoringListen))")
        }
        lines += ["jetstream {", "  store_dir: \(quote(config.embeddedStoreDirectory))"]
        if let maxFileStore { lines.append("  max_file_store: \(maxFileStore)") }
        if !config.nats.region.isEmpty { lines.append("  domain: \(quote(config.nats.region))") }
        lines.append("}")
        if !config.clusterAddress.isEmpty || !config.clusterPeers.isEmpty {
            lines.append("cluster {")
            lines.append("  name: \(quote(clusterName(config)))")
            if !config.clusterAddress.isEmpty { lines.append("  listen: \(quote(config.clusterAddress))") }
            if let credentials {
                // Routes authenticate: a server without the cluster secret cannot join.
                lines.append("  authorization { user: \(quote(credentials.routeUser)), password: \(quote(credentials.routePassword)), timeout: 2 }")
            }
            if !config.clusterPeers.isEmpty {
                let routes = config.clusterPeers.map { peer in credentials.map { routeURL(peer, user: $0.routeUser, password: $0.routePassword) } ?? peer }
                lines.append("  routes: [" + routes.map(quote).joined(separator: ", ") + "]")
            }
            if !config.nats.routeTLSCertFile.isEmpty {
                lines.append(
                    "  tls { cert_file: \(quote(config.nats.routeTLSCertFile)), key_file: \(quote(config.nats.routeTLSKeyFile)), "
                        + "ca_file: \(quote(config.nats.routeTLSCAFile)), verify: true, timeout: 2 }")
            }
            lines.append("}")
        }
        let leafCredentials = credentials.flatMap { $0.leafUser.isEmpty ? nil : $0 }
        if !config.leafServers.isEmpty || !config.nats.leafListen.isEmpty {
            lines.append("leafnodes {")
            if !config.nats.leafListen.isEmpty {
                // Leaves authenticate: a server without the cluster secret cannot inject messages here.
                lines.append("  listen: \(quote(config.nats.leafListen))")
                if let leafCredentials {
                    lines.append("  authorization { user: \(quote(leafCredentials.leafUser)), password: \(quote(leafCredentials.leafPassword)), timeout: 2 }")
                }
            }
            if !config.leafServers.isEmpty {
                lines.append("  remotes: [")
                let local =
                    config.nats.region.isEmpty
                    ? ""
                    : ", "
                        + ["deny_imports", "deny_exports"].map { key in
                            "\(key): [" + regionLocalSubjects(config).map(quote).joined(separator: ", ") + "]"
                        }.joined(separator: ", ")
                for leaf in config.leafServers {
                    // `url|url…`: one remote, several servers to connect to (the next one when one is lost).
                    let alternatives = leaf.split(separator: "|").map { splitHubQuery(String($0)) }
                    let urls = alternatives.map { url, _ in leafCredentials.map { routeURL(url, user: $0.leafUser, password: $0.leafPassword) } ?? url }
                    let hub = alternatives.contains { $0.1 }
                    // In the order given: the first is this server's hub, the others its fall-backs.
                    let ordered = urls.count > 1 ? ", dont_randomize: true" : ""
                    lines.append("    { urls: [\(urls.map(quote).joined(separator: ", "))]" + ordered + (hub ? ", hub: true" : "") + local + " }")
                }
                lines.append("  ]")
            }
            lines.append("}")
        }
        var users: [String] = []
        if let credentials {
            users.append(
                "{ user: \(quote(credentials.clientUser)), password: \(quote(credentials.clientPassword)), "
                    + "permissions: { publish: { allow: [" + allowedSubjects(config).map(quote).joined(separator: ", ") + "] } } }")
            if !credentials.adminUser.isEmpty {
                // The administrator: every permission; the supervisor's set-up of streams and buckets alone uses it.
                users.append("{ user: \(quote(credentials.adminUser)), password: \(quote(credentials.adminPassword)) }")
            }
        }
        if !config.nats.userName.isEmpty {
            users.append("{ user: \(quote(config.nats.userName)), password: \(quote(config.nats.userPassword)) }")
        }
        if let nkeyPublicKey { users.append("{ nkey: \(quote(nkeyPublicKey)) }") }
        if !users.isEmpty {
            lines.append("authorization {")
            lines.append("  users: [")
            lines += users.map { "    " + $0 }
            lines.append("  ]")
            lines.append("}")
        }
        if !config.nats.serverConfig.isEmpty {
            // Last, so the user's file wins, as in HarmonyLite. nats-server 2.9 resolves every include
            // relative to the including file, even an absolute one, hence the climb to the root.
            lines.append("include \(quote(relativeFromRoot(config.nats.serverConfig, base: runDirectory)))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// What the node's own user may publish on, nothing else (NATS permissions match whole tokens; every
    /// JetStream API request is a publish on its subject, nats-server 2.9's `$JS.API.…` layout):
    ///
    /// - its own change subjects `<subject_prefix>-<n>.<node_id>`: no change on another node's behalf, nor
    ///   on the shared subject;
    /// - reading: `$JS.API.INFO`, stream info, names and list, message get (`STREAM.MSG.GET`, `DIRECT.GET`),
    ///   consumer info, names and list;
    /// - on each shard stream, only the names of its own consumer pool (`ConsumerNames.pool`): create
    ///   (`CONSUMER.CREATE.<stream>.<name>[.<filter>]`, `CONSUMER.DURABLE.CREATE.<stream>.<name>`), fetch
    ///   (`CONSUMER.MSG.NEXT`), acknowledge (`$JS.ACK.<stream>.<name>.>`) and delete (`CONSUMER.DELETE`; also
    ///   the fixed name of older versions);
    /// - the schema registry: its own key `$KV.<registry>.node-<id>`, and ephemeral consumers on the bucket's
    ///   stream (listing keys);
    /// - its own node id claim `$KV.<stream_prefix>-node-claims.node-<id>`, and in a region, reading the
    ///   claims bucket of each other region (`$JS.<region>.API.STREAM.MSG.GET.KV_<stream_prefix>-node-claims`);
    /// - the snapshot lease's key (any node may hold the lease) and its snapshot request key (a new node
    ///   asks the lease holder for a snapshot);
    /// - with `snapshot.store = "nats"`: the object store's subjects `$O.<bucket>.>`, purging its stream (a
    ///   replaced snapshot's chunks) and ephemeral consumers on it (reading a snapshot);
    /// - flow-control replies of those ephemeral consumers (`$JS.FC.>`).
    ///
    /// Nothing else: no stream create, update, delete or purge, no message delete, no consumer of another
    /// node, no reply to another client's request (`_INBOX.>`). Streams and buckets are made by the
    /// administrator (the supervisor's set-up).
    static func allowedSubjects(_ config: Configuration) -> [String] {
        let shards = (1...max(1, config.replicationLog.shards))
        var subjects = shards.map { ChangeSubjects.own(prefix: config.nats.subjectPrefix, shard: $0, node: config.nodeID) }
        subjects += [
            "$JS.API.INFO", "$JS.API.STREAM.INFO.*", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST", "$JS.API.STREAM.MSG.GET.*",
            "$JS.API.DIRECT.GET.>", "$JS.API.CONSUMER.INFO.*.*", "$JS.API.CONSUMER.NAMES.*", "$JS.API.CONSUMER.LIST.*",
        ]
        for shard in shards {
            let stream = config.changeStreamName(shard: shard)
            let names = ConsumerNames(node: config.nodeName, shard: shard)
            subjects.append("$JS.API.CONSUMER.DELETE.\(stream).\(names.base)")
            for name in names.pool {
                subjects += [
                    "$JS.API.CONSUMER.CREATE.\(stream).\(name)", "$JS.API.CONSUMER.CREATE.\(stream).\(name).>",
                    "$JS.API.CONSUMER.DURABLE.CREATE.\(stream).\(name)", "$JS.API.CONSUMER.DELETE.\(stream).\(name)",
                    "$JS.API.CONSUMER.MSG.NEXT.\(stream).\(name)", "$JS.ACK.\(stream).\(name).>",
                ]
            }
        }
        func ephemeralConsumers(_ stream: String) -> [String] {
            ["$JS.API.CONSUMER.CREATE.\(stream)", "$JS.API.CONSUMER.CREATE.\(stream).>", "$JS.API.CONSUMER.DELETE.\(stream).*"]
        }
        subjects.append("$KV.\(SchemaRegistryBucket.name).\(SchemaRegistryBucket.key(nodeID: config.nodeID))")
        subjects += ephemeralConsumers("KV_" + SchemaRegistryBucket.name)
        subjects.append("$KV.\(config.snapshotLeaseBucket).\(Configuration.snapshotLeaseKey)")
        subjects.append("$KV.\(config.snapshotLeaseBucket).\(Configuration.snapshotRequestKey)")
        subjects.append("$KV.\(config.nodeClaimsBucket).\(Configuration.nodeClaimKey(config.nodeID))")
        // Reading (only) the claims bucket of every other region: node ids are unique across regions.
        subjects += config.otherRegions.map { "$JS.\($0).API.STREAM.MSG.GET.KV_\(config.nodeClaimsBucket)" }
        if config.snapshot.store == "nats" {
            let bucket = config.snapshotObjectBucket
            subjects += ["$O.\(bucket).>", "$JS.API.STREAM.PURGE.OBJ_\(bucket)"] + ephemeralConsumers("OBJ_" + bucket)
        }
        // `publish_for_upstream`: upstream HarmonyLite's nodes read only the shared subject (unchecked, as theirs are).
        if config.replicationLog.publishForUpstream {
            subjects += shards.map { ChangeSubjects.shared(prefix: config.nats.subjectPrefix, shard: $0) }
        }
        return subjects + ["$JS.FC.>"]
    }

    /// `nats://host:port/` → `nats://user:password@host:port/`; a URL with its own credentials stays.
    static func routeURL(_ url: String, user: String, password: String) -> String {
        guard let scheme = url.range(of: "://") else { return url }
        let rest = url[scheme.upperBound...]
        let authority = rest.prefix { $0 != "/" }
        if authority.contains("@") { return url }
        return String(url[..<scheme.upperBound]) + user + ":" + password + "@" + rest
    }

    /// JetStream's default file-storage limit: 10 GiB, or half the file system when that is smaller.
    public static func defaultMaxFileStore(fileSystemBytes: UInt64) -> UInt64 {
        min(10 << 30, max(fileSystemBytes / 2, 256 << 20))
    }

    /// The URL the node's own processes (and its one-shot commands) reach the embedded server at: the host
    /// `nats.bind_address` names, loopback when it names none or every address. (Always loopback, a server
    /// bound to one other address — a LAN address, a namespace's — was never reached: the broker failed to
    /// connect forever.)
    public static func clientURL(_ config: Configuration, port: Int) -> String {
        let host = HostPort(parsing: config.nats.bindAddress)?.host ?? ""
        switch host {
        case "", "0.0.0.0", "::": return "nats://127.0.0.1:\(port)"
        case let ipv6 where ipv6.contains(":"): return "nats://[\(ipv6)]:\(port)"
        default: return "nats://\(host):\(port)"
        }
    }

    /// `nats://host:port?hub=true` → (`nats://host:port`, true), HarmonyLite's leaf hub syntax.
    static func splitHubQuery(_ url: String) -> (String, Bool) {
        guard let question = url.firstIndex(of: "?") else { return (url, false) }
        let query = url[url.index(after: question)...].split(separator: "&")
        return (String(url[..<question]), query.contains("hub=true"))
    }

    static func relativeFromRoot(_ path: String, base: String) -> String {
        let depth = base.split(separator: "/").count
        return String(repeating: "../", count: depth) + path.drop(while: { $0 == "/" })
    }

    /// A double-quoted nats-server string, built byte by byte: printable ASCII as it is, every other byte
    /// (`"`, `\\`, newlines, NUL, each UTF-8 byte of `é` or of a combining mark) as `\\xHH`, which the
    /// server's lexer turns back into that byte. No value can end the string, start a line or a new key.
    /// (Mapping Swift Characters missed a `"` followed by a combining mark, and passed newlines through.)
    static func quote(_ text: String) -> String {
        var out = "\""
        for byte in text.utf8 {
            if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "\\x" + String(byte >> 4, radix: 16) + String(byte & 0xF, radix: 16)
            }
        }
        return out + "\""
    }
}
