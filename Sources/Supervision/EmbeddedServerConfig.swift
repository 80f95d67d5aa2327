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
