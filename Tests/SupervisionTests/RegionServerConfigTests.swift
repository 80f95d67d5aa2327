import TestSupport
import Testing

@testable import HarmonyConfig
@testable import Supervision

@Suite struct RegionServerConfigTests {
    static func regional(_ region: String) -> Configuration {
        var config = EmbeddedServerConfigTests.config()
        config.nats.region = region
        config.nats.regions = ["a", "b"]
        config.replicationLog.shards = 2
        config.leafServers = ["nats://h1:7422|nats://h2:7422"]
        return config
    }

    /// A region: its own cluster name and JetStream domain; leaf remotes with fall-backs in order, carrying
    /// neither change subjects nor the buckets' subjects.
    @Test func aRegionHasItsClusterDomainAndLocalSubjects() {
        let text = EmbeddedServerConfig.render(Self.regional("b"), runDirectory: "/run/harmonylite")
        #expect(text.contains("name: \"e-harmonylite-b\""))
        #expect(text.contains("  domain: \"b\"\n}"))
        let subjects =
            "[\"harmonylite-change-log-1\", \"harmonylite-change-log-1.*\", \"harmonylite-change-log-2\", \"harmonylite-change-log-2.*\", \"$KV.>\", \"$O.>\"]"
        #expect(
            text.contains("{ urls: [\"nats://h1:7422\", \"nats://h2:7422\"], dont_randomize: true, deny_imports: \(subjects), deny_exports: \(subjects) }"),
            "\(text)")
        let single = EmbeddedServerConfig.render(EmbeddedServerConfigTests.config(), runDirectory: "/run/harmonylite")
        #expect(single.contains("name: \"e-harmonylite\"\n") && !single.contains("domain:") && !single.contains("deny_"))
    }

    /// The generated `http:` is left out when the operator's server_config places monitoring (no race).
    @Test func theOperatorsMonitoringKeyIsTheOnlyOne() {
        let config = EmbeddedServerConfigTests.config()
        #expect(EmbeddedServerConfig.render(config, runDirectory: "/r").contains("http: \"127.0.0.1:-1\""))
        #expect(!EmbeddedServerConfig.render(config, runDirectory: "/r", monitoringInServerConfig: true).contains("http:"))
    }

    @Test(arguments: [
        ("monitor_port = 8222\n", true), ("MONITOR_PORT: 8222", true), ("http: \"0.0.0.0:8222\"", true), ("  http_port 8222 # comment", true),
        ("https: 8443", true), ("# monitor_port = 8222\n", false), ("// http: 1\n", false),
        ("jetstream {\n  http: 1\n}\n", false), ("authorization { users: [ { user: monitor_port } ] }", false),
        ("listen: \"monitor_port = 1\"", false), ("max_payload: 1MB\nmonitor_port: 8222", true), ("a: 1, http_port: 2", true),
        ("\"unterminated", false), ("}}}}\nhttp: 1", true),
    ])
    func findsTopLevelMonitoringKeys(text: String, sets: Bool) {
        #expect(ServerConfigKeys.setsMonitoring(path: "/etc/n.conf", read: { $0 == "/etc/n.conf" ? text : nil }) == sets, "\(text)")
    }

    /// Includes are followed relative to the including file, to a bounded depth; a file too large is not read.
    @Test func followsIncludesBoundedly() {
        let files = [
            "/etc/n.conf": "include \"sub/mon.conf\"\n", "/etc/sub/mon.conf": "include /abs.conf", "/abs.conf": "monitor_port = 1",
            "/loop.conf": "include /loop.conf",
        ]
        #expect(ServerConfigKeys.setsMonitoring(path: "/etc/n.conf", read: { files[$0] }))
        #expect(!ServerConfigKeys.setsMonitoring(path: "/loop.conf", read: { files[$0] }))
        #expect(!ServerConfigKeys.setsMonitoring(path: "/big", read: { _ in String(repeating: " ", count: ServerConfigKeys.maximumBytes) + "http: 1" }))
    }
}
