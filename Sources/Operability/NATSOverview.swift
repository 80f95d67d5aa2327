import Foundation

/// What `-status` shows of the embedded nats-server, from its monitoring endpoint's `/routez`, `/jsz` and
/// `/leafz` answers (nats-server 2.9's JSON; every field optional, any answer that does not parse reads as
/// nothing known). Pure: the fetching is the status command's.
public struct NATSOverview: Equatable, Sendable {
    public var monitoringURL: String
    /// `ip:port` of each route (nats-server 2.9 names no remote server in `/routez`).
    public var routes: [String]?
    public var domain: String?
    public var metaCluster: String?
    public var metaLeader: String?
    public var clusterSize: Int?
    /// The JetStream meta group's peers other than this server, as its leader reports them.
    public var peers: [Peer] = []
    /// Leaf-node connections: `ip:port`, with the remote server's name when nats-server gives it.
    public var leafs: [String]?

    public struct Peer: Equatable, Sendable {
        public var name: String
        public var current: Bool
        public var offline: Bool
    }

    /// Answers above this size are not read (a monitoring port that is not nats-server's).
    public static let maximumAnswerBytes = 4 << 20

    public init(monitoringURL: String, routez: [UInt8]?, jsz: [UInt8]?, leafz: [UInt8]?) {
        self.monitoringURL = monitoringURL
        if let routez = Self.object(routez) {
            routes = (routez["routes"] as? [[String: Any]] ?? []).map(Self.address)
        }
        if let jsz = Self.object(jsz) {
            domain = (jsz["config"] as? [String: Any])?["domain"] as? String
            if let meta = jsz["meta_cluster"] as? [String: Any] {
                metaCluster = meta["name"] as? String
                metaLeader = meta["leader"] as? String
                clusterSize = meta["cluster_size"] as? Int
                peers = (meta["replicas"] as? [[String: Any]] ?? []).compactMap { replica in
                    guard let name = replica["name"] as? String else { return nil }
                    return Peer(name: name, current: replica["current"] as? Bool ?? false, offline: replica["offline"] as? Bool ?? false)
                }
            }
        }
        if let leafz = Self.object(leafz) {
            leafs = (leafz["leafs"] as? [[String: Any]] ?? []).map { leaf in
                (leaf["name"] as? String).map { "\($0) (\(Self.address(leaf)))" } ?? Self.address(leaf)
            }
        }
    }

    /// The lines `-status` prints.
    public var lines: [String] {
        var lines = ["NATS monitoring: \(monitoringURL)"]
        lines.append("NATS routes:     " + (routes.map { $0.isEmpty ? "none" : $0.joined(separator: ", ") } ?? "unknown (no answer from /routez)"))
        if let leafs { lines.append("NATS leafnodes:  " + (leafs.isEmpty ? "none" : leafs.joined(separator: ", "))) }
        var jetStream = "unknown (no answer from /jsz)"
        if metaCluster != nil || clusterSize != nil || domain != nil {
            var parts: [String] = []
            if let domain, !domain.isEmpty { parts.append("domain \(domain)") }
            if let metaCluster { parts.append("cluster \(metaCluster)") }
            if let clusterSize { parts.append("\(clusterSize) servers") }
            parts.append("leader " + (metaLeader ?? "none known"))
            if !peers.isEmpty {
                parts.append("peers " + peers.map { "\($0.name) (\($0.offline ? "offline" : $0.current ? "current" : "behind"))" }.joined(separator: ", "))
            }
            jetStream = parts.joined(separator: ", ")
        }
        lines.append("JetStream:       \(jetStream)")
        return lines
    }

    private static func object(_ bytes: [UInt8]?) -> [String: Any]? {
        guard let bytes, bytes.count <= maximumAnswerBytes else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
    }

    private static func address(_ entry: [String: Any]) -> String {
        let ip = entry["ip"] as? String ?? "?"
        let port = (entry["port"] as? Int).map(String.init) ?? "?"
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
