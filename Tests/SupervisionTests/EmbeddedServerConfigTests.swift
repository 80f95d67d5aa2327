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
        #expect(text.contains("{ user: \"harmonylite\", password: \"p\\\"w\" }"))
        #expect(text.contains("{ nkey: \"UABC\" }"))
        // nats-server 2.9 resolves includes relative to the including file: climb to / first. Last line: it wins.
        #expect(text.hasSuffix("include \"../../etc/harmonylite/nats.conf\"\n"))
    }

    @Test func pinnedPortAndNoClusterWithoutFlags() {
        var config = Configuration(dbPath: "/d/x.db", nodeID: 1)
        config.nats.bindAddress = "0.0.0.0:4222"
        let text = EmbeddedServerConfig.render(config, runDirectory: "/d/.x.db.harmonylite", clientPort: 4222)
        #expect(text.contains("host: \"0.0.0.0\"\nport: 4222"))
        #expect(!text.contains("cluster {") && !text.contains("authorization") && !text.contains("include"))
    }

    /// The node reaches its own server where it listens: a server bound to one address is not on loopback.
    @Test func clientURLFollowsTheBindAddress() {
        var config = Configuration(dbPath: "/d/x.db", nodeID: 1)
        let cases = [(":-1", "nats://127.0.0.1:4222"), ("0.0.0.0:4222", "nats://127.0.0.1:4222"), ("[::]:4222", "nats://127.0.0.1:4222"),
                     ("10.77.0.2:4222", "nats://10.77.0.2:4222"), ("[fd00::2]:4222", "nats://[fd00::2]:4222"), ("node1.lan:4222", "nats://node1.lan:4222")]
        for (bind, url) in cases {
            config.nats.bindAddress = bind
            #expect(EmbeddedServerConfig.clientURL(config, port: 4222) == url, "bind_address \(bind)")
        }
    }
}
