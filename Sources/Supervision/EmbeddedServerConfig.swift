import HarmonyConfig

/// The nats-server configuration file the supervisor writes for the embedded server, from the node's
/// configuration: what HarmonyLite set up in-process, expressed for Debian's real nats-server.
public enum EmbeddedServerConfig {
    /// HarmonyLite's cluster name for embedded servers.
    public static let clusterName = "e-harmonylite"

    /// - Parameters:
    ///   - runDirectory: where nats-server writes its ports file (how the supervisor learns a random port).
    ///   - clientPort: the port to listen on; nil uses `nats.bind_address`'s (-1 = any free port). After the
    ///     first start the supervisor pins the port it got, so a restarted server keeps its URL.
    ///   - nkeyPublicKey: the public key of `nats.seed_file`, authorized as a user.
    public static func render(_ config: Configuration, runDirectory: String, clientPort: Int? = nil, nkeyPublicKey: String? = nil) -> String {
        let bind = HostPort(parsing: config.nats.bindAddress) ?? HostPort(parsing: ":-1")!
        var lines = [
            "# Written by harmonylite at every start; edit the node's TOML (or nats.server_config) instead.",
            "server_name: \(quote(config.nodeName))",
            "host: \(quote(bind.host.isEmpty ? "127.0.0.1" : bind.host))",
            "port: \(clientPort ?? bind.port)",
            "ports_file_dir: \(quote(runDirectory))",
            "jetstream {",
            "  store_dir: \(quote(config.embeddedStoreDirectory))",
            "}",
        ]
        if !config.clusterAddress.isEmpty || !config.clusterPeers.isEmpty {
            lines.append("cluster {")
            lines.append("  name: \(quote(clusterName))")
            if !config.clusterAddress.isEmpty { lines.append("  listen: \(quote(config.clusterAddress))") }
            if !config.clusterPeers.isEmpty {
                lines.append("  routes: [" + config.clusterPeers.map(quote).joined(separator: ", ") + "]")
            }
            lines.append("}")
        }
        if !config.leafServers.isEmpty {
            lines.append("leafnodes {")
            lines.append("  remotes: [")
            for leaf in config.leafServers {
                let (url, hub) = splitHubQuery(leaf)
                lines.append("    { urls: [\(quote(url))]" + (hub ? ", hub: true" : "") + " }")
            }
            lines.append("  ]")
            lines.append("}")
        }
        var users: [String] = []
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

    static func quote(_ text: String) -> String {
        "\"" + text.map { $0 == "\"" ? "\\\"" : $0 == "\\" ? "\\\\" : String($0) }.joined() + "\""
    }
}
