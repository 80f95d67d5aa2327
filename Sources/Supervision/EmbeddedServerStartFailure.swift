/// Why the embedded nats-server could not start at all, recognised from the last fatal line it wrote, when
/// restarting it cannot help: another process listens on a port it must listen on, or the configuration
/// makes a JetStream cluster without routes. Only the node's first server counts (`EmbeddedServerMachine
/// .startFailure`): the supervisor stops the node with `SupervisorExitCode.configuration` instead of
/// restarting the server into the same failure until the restart budget runs out (and systemd's
/// `Restart=on-failure` starts the node into it again).
public enum EmbeddedServerStartFailure: Equatable, Sendable {
    /// Which listener could not bind, and the configuration that names its address.
    public enum Listener: String, Equatable, Sendable {
        case clients = "nats.bind_address"
        case routes = "-cluster-addr"
        case leafNodes = "nats.leaf_listen"
        case monitoring = "nats.server_config"
    }

    /// `address` (`host:port` as nats-server said it) is in use: another process listens there.
    case addressInUse(Listener, address: String, port: Int)
    /// nats-server refuses a JetStream cluster (`-cluster-addr`) that has no routes.
    case clusterWithoutRoutes

    /// The longest line looked at: nats-server's fatal lines are short; the rest is not parsed.
    static let maximumLineBytes = 1024

    /// Recognises nats-server's fatal line (2.9: `Error listening on port: 127.0.0.1:4222, "listen tcp
    /// 127.0.0.1:4222: bind: address already in use"`, `Error listening on router port: 6222 - listen tcp …`,
    /// `Error listening on leafnode port: …`, `Can't listen to the monitor port: …`; `Can't start JetStream:
    /// JetStream cluster requires configured routes …`). Anything else is nil: a crash, restarted as one.
    public init?(lastWords: String) {
        let line = Substring(
            lastWords.utf8.count > Self.maximumLineBytes ? String(decoding: lastWords.utf8.prefix(Self.maximumLineBytes), as: UTF8.self) : lastWords)
        if line.contains("JetStream cluster requires configured routes") {
            self = .clusterWithoutRoutes
            return
        }
        guard line.contains("address already in use"), let listen = line.range(of: "listen tcp ") else { return nil }
        let listener: Listener
        if line.hasPrefix("Error listening on port:") {
            listener = .clients
        } else if line.hasPrefix("Error listening on router port") {
            listener = .routes
        } else if line.hasPrefix("Error listening on leafnode port") {
            listener = .leafNodes
        } else if line.contains("monitor") {
            listener = .monitoring
        } else {
            return nil
        }
        // `listen tcp HOST:PORT: bind: …` (an IPv6 host is bracketed, `[::1]:4222`).
        let rest = line[listen.upperBound...]
        guard let end = rest.range(of: ": bind") else { return nil }
        let address = String(rest[..<end.lowerBound])
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        self = .addressInUse(listener, address: address, port: port)
    }

    /// What to tell the operator; `holder` names the process listening there when it is known
    /// (`python3, pid 14870`).
    public func problem(holder: String?) -> String {
        switch self {
        case .addressInUse(let listener, let address, let port):
            let who = holder.map { "another process (\($0))" } ?? "another process"
            return "port \(port) (\(address)) is in use by \(who): the embedded nats-server cannot listen there; "
                + "stop that process or choose another port in \(listener.rawValue)"
        case .clusterWithoutRoutes:
            return "-cluster-addr is set but there are no routes: nats-server refuses a JetStream cluster without routes; "
                + "name the other servers with -cluster-peers (or routes in nats.server_config), or leave -cluster-addr out for a single node"
        }
    }

    /// The port whose holder is worth looking up.
    public var port: Int? {
        if case .addressInUse(_, _, let port) = self { return port }
        return nil
    }
}

/// Which sockets listen on a TCP port, from `/proc/net/tcp` and `/proc/net/tcp6` (pure: the text in, the
/// socket inodes out; the glue maps an inode to a process through `/proc/<pid>/fd`).
public enum ListeningSockets {
    /// The inodes of the sockets in state LISTEN (`0A`) on local port `port`. Bounded: at most 10,000 lines.
    public static func inodes(procNetTCP text: String, port: Int) -> [UInt64] {
        var found: [UInt64] = []
        for line in text.split(separator: "\n").dropFirst().prefix(10_000) {
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 9, fields[3] == "0A", let colon = fields[1].lastIndex(of: ":"),
                let local = Int(fields[1][fields[1].index(after: colon)...], radix: 16), local == port, let inode = UInt64(fields[9]), inode != 0
            else { continue }
            found.append(inode)
        }
        return found
    }
}
