import TestSupport
import Testing

@testable import HarmonyConfig
@testable import Supervision

@Suite struct EmbeddedServerConfigTests {
    static func config() -> Configuration {
        var config = Configuration(dbPath: "/var/lib/harmonylite/data.db", nodeID: 7)
        config.clusterAddress = "0.0.0.0:4221"
        config.clusterPeers = ["nats://n2:4222/", "nats://n3:4223/"]
        config.leafServers = ["nats://hub:7422?hub=true", "nats://leaf:7422"]
        config.nats.userName = "harmonylite"
        config.nats.userPassword = "p\"w"
        config.nats.serverConfig = "/etc/harmonylite/nats.conf"
        return config
    }

    @Test func rendersHarmonyLitesEmbeddedServer() {
        let text = EmbeddedServerConfig.render(Self.config(), runDirectory: "/run/harmonylite", nkeyPublicKey: "UABC")
        #expect(text.contains("server_name: \"harmonylite-node-7\""))
        #expect(text.contains("host: \"127.0.0.1\"\nport: -1"))
        #expect(text.contains("store_dir: \"/var/lib/harmonylite/nats/harmonylite-node-7\""))
        #expect(text.contains("name: \"e-harmonylite\"\n  listen: \"0.0.0.0:4221\"\n  routes: [\"nats://n2:4222/\", \"nats://n3:4223/\"]"))
        #expect(text.contains("{ urls: [\"nats://hub:7422\"], hub: true }"))
        #expect(text.contains("{ urls: [\"nats://leaf:7422\"] }"))
        #expect(text.contains("{ user: \"harmonylite\", password: \"p\\x22w\" }"))
        #expect(text.contains("{ nkey: \"UABC\" }"))
        // nats-server 2.9 resolves includes relative to the including file: climb to / first. Last line: it wins.
        #expect(text.hasSuffix("include \"../../etc/harmonylite/nats.conf\"\n"))
    }

    /// Regions meet across leaf connections: the server name carries the region, so a node started with
    /// another region's node id brings no second server of that name into the system. The store directory and
    /// the consumers' names stay the node's name (no state moves).
    @Test func serverNameIsUniqueAcrossRegions() {
        var a = Self.config()
        a.nats.region = "a"
        a.nats.regions = ["a", "b"]
        var b = a
        b.nats.region = "b"
        let (textA, textB) = (EmbeddedServerConfig.render(a, runDirectory: "/r"), EmbeddedServerConfig.render(b, runDirectory: "/r"))
        #expect(textA.contains("server_name: \"harmonylite-node-7-a\"\n"))
        #expect(textB.contains("server_name: \"harmonylite-node-7-b\"\n"))
        #expect(textA.contains("name: \"e-harmonylite-a\"") && textB.contains("name: \"e-harmonylite-b\""))
        #expect(textA.contains("domain: \"a\"") && textB.contains("domain: \"b\""))
        #expect(textB.contains("store_dir: \"/var/lib/harmonylite/nats/harmonylite-node-7\""))
        #expect(a.embeddedServerName != b.embeddedServerName && a.nodeName == b.nodeName)
        // A store an older version used (no record) keeps its name; a record of this node's names is kept; junk is not.
        #expect(EmbeddedServerConfig.serverName(b, recorded: nil, storeInUse: true) == "harmonylite-node-7")
        #expect(EmbeddedServerConfig.serverName(b, recorded: nil, storeInUse: false) == "harmonylite-node-7-b")
        #expect(EmbeddedServerConfig.serverName(b, recorded: "harmonylite-node-7-a\n", storeInUse: true) == "harmonylite-node-7-a")
        #expect(EmbeddedServerConfig.serverName(b, recorded: "harmonylite-node-7", storeInUse: true) == "harmonylite-node-7")
        #expect(EmbeddedServerConfig.serverName(b, recorded: "harmonylite-node-8-b", storeInUse: true) == "harmonylite-node-7")
        #expect(EmbeddedServerConfig.serverName(b, recorded: "harmonylite-node-7-\"x", storeInUse: false) == "harmonylite-node-7-b")
        #expect(EmbeddedServerConfig.render(b, runDirectory: "/r", serverName: "harmonylite-node-7").contains("server_name: \"harmonylite-node-7\"\n"))
        // The node's user reads the claims bucket of each other region, and nothing else there.
        let allowed = EmbeddedServerConfig.allowedSubjects(b)
        #expect(allowed.contains("$JS.a.API.STREAM.MSG.GET.KV_harmonylite-changes-node-claims"))
        #expect(allowed.filter { $0.hasPrefix("$JS.a.") || $0.hasPrefix("$JS.b.") } == ["$JS.a.API.STREAM.MSG.GET.KV_harmonylite-changes-node-claims"])
        #expect(!EmbeddedServerConfig.allowedSubjects(Self.config()).contains { $0.hasPrefix("$JS.a.") })
    }

    @Test func pinnedPortAndNoClusterWithoutFlags() {
        var config = Configuration(dbPath: "/d/x.db", nodeID: 1)
        config.nats.bindAddress = "0.0.0.0:4222"
        let text = EmbeddedServerConfig.render(config, runDirectory: "/d/.x.db.harmonylite", clientPort: 4222)
        #expect(text.contains("host: \"0.0.0.0\"\nport: 4222"))
        #expect(!text.contains("cluster {") && !text.contains("authorization") && !text.contains("include"))
    }

    /// Authenticated by default: this node's user (may publish changes on its own subjects only, denied
    /// stream deletion and purges of the change streams), routes with a user and password from the cluster secret, peers dialled with them, route
    /// TLS when configured, and a JetStream storage limit.
    @Test func rendersAuthenticationRoutesAndLimits() {
        var config = Self.config()
        config.replicationLog.shards = 2
        config.nats.routeTLSCertFile = "/etc/h/node.pem"
        config.nats.routeTLSKeyFile = "/etc/h/node.key"
        config.nats.routeTLSCAFile = "/etc/h/ca.pem"
        let credentials = EmbeddedCredentials(clientUser: "harmonylite-node-7", clientPassword: "cpw", routeUser: "harmonylite-route", routePassword: "rpw")
        let text = EmbeddedServerConfig.render(config, runDirectory: "/run/x", credentials: credentials, maxFileStore: 1 << 30)
        #expect(text.contains("  max_file_store: 1073741824\n}"))
        #expect(text.contains("authorization { user: \"harmonylite-route\", password: \"rpw\", timeout: 2 }"))
        #expect(text.contains("routes: [\"nats://harmonylite-route:rpw@n2:4222/\", \"nats://harmonylite-route:rpw@n3:4223/\"]"))
        #expect(text.contains("tls { cert_file: \"/etc/h/node.pem\", key_file: \"/etc/h/node.key\", ca_file: \"/etc/h/ca.pem\", verify: true, timeout: 2 }"))
        // Its own change subjects only (listed per shard), never the shared one nor another node's; no
        // inbox replies; no deny list (an allow list: everything unlisted is refused).
        #expect(
            text.contains(
                "{ user: \"harmonylite-node-7\", password: \"cpw\", permissions: { publish: { allow: ["
                    + "\"harmonylite-change-log-1.\(config.nodeID)\", \"harmonylite-change-log-2.\(config.nodeID)\", \"$JS.API.INFO\", "))
        config.snapshot.store = "nats"
        let allowed = EmbeddedServerConfig.allowedSubjects(config)
        #expect(
            !allowed.contains {
                $0 == "$JS.API.>" || $0 == "_INBOX.>" || $0 == "$KV.>" || $0 == "$O.>" || $0.hasPrefix("$JS.API.STREAM.CREATE")
                    || $0.hasPrefix("$JS.API.STREAM.UPDATE") || $0.hasPrefix("$JS.API.STREAM.DELETE") || $0.hasPrefix("$JS.API.STREAM.MSG.DELETE")
            })
        #expect(
            !allowed.contains("$JS.API.STREAM.PURGE.harmonylite-changes-1") && allowed.contains("$JS.API.STREAM.PURGE.OBJ_harmonylite-changes-snapshot-store"))
        // Consumers: its own pool's names on each shard stream, nothing with a wildcard name.
        #expect(allowed.contains("$JS.API.CONSUMER.DURABLE.CREATE.harmonylite-changes-2.harmonylite-node-7-2-000000000000003f"))
        #expect(allowed.contains("$JS.API.CONSUMER.CREATE.harmonylite-changes-1.harmonylite-node-7-1-0000000000000000.>"))
        #expect(allowed.contains("$JS.API.CONSUMER.DELETE.harmonylite-changes-1.harmonylite-node-7-1"))
        #expect(allowed.contains("$JS.ACK.harmonylite-changes-1.harmonylite-node-7-1-0000000000000001.>"))
        #expect(
            !allowed.contains {
                $0.hasPrefix("$JS.API.CONSUMER.") && ($0.contains("harmonylite-changes-1.") || $0.contains("harmonylite-changes-2."))
                    && !$0.hasPrefix("$JS.API.CONSUMER.INFO")
                    && !$0.hasPrefix("$JS.API.CONSUMER.NAMES") && !$0.hasPrefix("$JS.API.CONSUMER.LIST") && !$0.contains("harmonylite-node-7-")
            })
        // Key-value: its own registry key, the lease's key, the snapshot request key and its own id claim.
        #expect(
            allowed.contains("$KV.harmonylite-schema-registry.node-7") && allowed.contains("$KV.harmonylite-changes-snapshot-lease.snapshot-leader")
                && allowed.contains("$KV.harmonylite-changes-snapshot-lease.snapshot-request") && allowed.contains("$KV.harmonylite-changes-node-claims.node-7")
        )
        #expect(allowed.filter { $0.hasPrefix("$KV.") }.count == 4)
        // The administrator, derived too, with every permission.
        let withAdmin = EmbeddedCredentials(
            clientUser: "harmonylite-node-7", clientPassword: "cpw", routeUser: "harmonylite-route", routePassword: "rpw",
            adminUser: "harmonylite-admin", adminPassword: "apw")
        #expect(
            EmbeddedServerConfig.render(config, runDirectory: "/run/x", credentials: withAdmin).contains("{ user: \"harmonylite-admin\", password: \"apw\" }"))
        // Leaves: the listener asks for the derived leaf user, the remotes (-leaf-servers) send it.
        config.nats.leafListen = "0.0.0.0:7422"
        let withLeaf = EmbeddedCredentials(
            clientUser: "harmonylite-node-7", clientPassword: "cpw", routeUser: "harmonylite-route", routePassword: "rpw",
            adminUser: "harmonylite-admin", adminPassword: "apw", leafUser: "harmonylite-leaf", leafPassword: "lpw")
        let leafText = EmbeddedServerConfig.render(config, runDirectory: "/run/x", credentials: withLeaf)
        #expect(
            leafText.contains(
                "leafnodes {\n  listen: \"0.0.0.0:7422\"\n  authorization { user: \"harmonylite-leaf\", password: \"lpw\", timeout: 2 }\n  remotes: ["),
            "\(leafText)")
        #expect(leafText.contains("{ urls: [\"nats://harmonylite-leaf:lpw@hub:7422\"], hub: true }"), "\(leafText)")
        #expect(EmbeddedServerConfig.routeURL("nats://a:b@h:1", user: "u", password: "p") == "nats://a:b@h:1", "a peer URL with its own credentials stays")
        #expect(EmbeddedServerConfig.defaultMaxFileStore(fileSystemBytes: 100 << 30) == 10 << 30)
        #expect(EmbeddedServerConfig.defaultMaxFileStore(fileSystemBytes: 8 << 30) == 4 << 30)
    }

    /// Values that tried to close the string or start a line: a quote followed by a combining mark (one
    /// Swift Character), newlines with a whole `authorization` block, NUL, backslashes.
    static let hostileValues = [
        "p\"\u{301}\nauthorization { users: [ { user: x, password: y } ] }\n#",
        "a\u{0}b", "back\\slash\\\"", "\r\ninclude \"/etc/passwd\"", "é\u{301}\u{308}", "$VAR",
    ]

    @Test(arguments: hostileValues)
    func valuesAreQuotedByBytesAndComeBackWhole(_ value: String) throws {
        let quoted = EmbeddedServerConfig.quote(value)
        #expect(quoted.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }, "only printable ASCII: \(quoted)")
        #expect(Self.unquote(quoted) == Array(value.utf8))
        var config = Self.config()
        config.nats.userPassword = value
        config.nats.userName = value
        config.clusterPeers = [value]
        let benign = EmbeddedServerConfig.render(Self.config(), runDirectory: "/run/x", nkeyPublicKey: "UABC")
        let text = EmbeddedServerConfig.render(config, runDirectory: "/run/x", nkeyPublicKey: "UABC")
        #expect(text.split(separator: "\n").count == benign.split(separator: "\n").count, "no line added:\n\(text)")
        let starts = { (word: String) in text.split(separator: "\n").filter { $0.trimmingPrefix(while: \.isWhitespace).hasPrefix(word) }.count }
        #expect(starts("authorization") == 1 && starts("include") == 1 && starts("users") == 1)
    }

    /// nats-server's reading of a double-quoted string: `\\xHH` is one byte, `\\"` and `\\\\` are themselves.
    static func unquote(_ quoted: String) -> [UInt8] {
        var bytes = Array(quoted.utf8.dropFirst().dropLast())[...]
        var out: [UInt8] = []
        while let byte = bytes.popFirst() {
            guard byte == UInt8(ascii: "\\") else { out.append(byte); continue }
            guard bytes.popFirst() == UInt8(ascii: "x"), let high = bytes.popFirst(), let low = bytes.popFirst(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            else { return [] }
            out.append(value)
        }
        return out
    }

    /// The node reaches its own server where it listens: a server bound to one address is not on loopback.
    @Test func clientURLFollowsTheBindAddress() {
        var config = Configuration(dbPath: "/d/x.db", nodeID: 1)
        let cases = [
            (":-1", "nats://127.0.0.1:4222"), ("0.0.0.0:4222", "nats://127.0.0.1:4222"), ("[::]:4222", "nats://127.0.0.1:4222"),
            ("10.77.0.2:4222", "nats://10.77.0.2:4222"), ("[fd00::2]:4222", "nats://[fd00::2]:4222"), ("node1.lan:4222", "nats://node1.lan:4222"),
        ]
        for (bind, url) in cases {
            config.nats.bindAddress = bind
            #expect(EmbeddedServerConfig.clientURL(config, port: 4222) == url, "bind_address \(bind)")
        }
    }
}
