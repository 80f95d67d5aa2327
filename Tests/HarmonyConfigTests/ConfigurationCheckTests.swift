import Foundation
import TestSupport
import Testing

@testable import HarmonyConfig

/// `-check-config`: every key's problem at once, impossible settings, and what it says about the database.
@Suite struct ConfigurationCheckTests {
    /// The same fixture as the loader's tests: a directory, a database in it, a fixed environment.
    let fixture: ConfigurationTests
    var directory: TemporaryDirectory { fixture.directory }
    var database: String { fixture.database }

    init() throws { fixture = try ConfigurationTests() }

    func check(_ toml: String, overrides: CommandLineOverrides = .init()) -> (loaded: LoadedConfiguration?, problems: [ConfigurationError]) {
        ConfigurationLoader.check(path: directory.write("node.toml", toml), overrides: overrides, environment: fixture.environment)
    }

    @Test func everyKeysProblemIsNamedNotOnlyTheFirst() {
        let result = check("db_path = \"\(database)\"\nnode_ide = 3\n[replication_log]\nshard = 2\nmax_entries = \"many\"\n[snapshot]\nintervall = 10\n")
        #expect(result.loaded == nil)
        let text = result.problems.map(\.description)
        #expect(text.count == 4, "\(text)")
        #expect(text.contains { $0.contains(":2: unknown key node_ide (did you mean node_id?)") }, "\(text)")
        #expect(text.contains { $0.contains(":4: unknown key replication_log.shard (did you mean replication_log.shards?)") }, "\(text)")
        #expect(text.contains { $0.contains(":5: replication_log.max_entries must be") }, "\(text)")
        #expect(text.contains { $0.contains(":7: unknown key snapshot.intervall (did you mean snapshot.interval?)") }, "\(text)")
    }

    @Test func moreReplicasThanEmbeddedServersIsRefusedWithTheReason() throws {
        let toml = "db_path = \"\(database)\"\n[replication_log]\nreplicas = 3\n"
        let alone = check(toml)
        #expect(
            alone.problems.first?.description.contains("replication_log.replicas asks for 3 JetStream replicas, but the embedded cluster has 1 server(s)")
                == true,
            "\(alone.problems)")
        let clustered = check(toml, overrides: .init(clusterPeers: "nats://10.0.0.2:6222,nats://10.0.0.3:6222"))
        #expect(clustered.problems.isEmpty && clustered.loaded != nil, "\(clustered.problems)")
        let store = check("db_path = \"\(database)\"\n[snapshot.nats]\nreplicas = 2\n")
        #expect(store.problems.first?.key == "snapshot.nats.replicas")
        let external = check("db_path = \"\(database)\"\n[nats]\nurls = [\"nats://10.0.0.9:4222\"]\n[replication_log]\nreplicas = 3\n")
        #expect(external.problems.isEmpty, "external NATS: its size is not known here")
    }

    @Test func theSummaryNamesTheDatabaseAndItsTables() throws {
        let config = try #require(check("db_path = \"\(database)\"\n").loaded)
        let ok = ConfigurationCheck(
            file: "node.toml", configuration: config.configuration, warnings: [],
            database: .readable(replicated: ["books"], refused: [(name: "log", reason: "it has no PRIMARY KEY")]))
        #expect(ok.passed)
        #expect(ok.text.contains("database \(database): 1 table(s) replicate: books"))
        #expect(ok.text.contains("warning: table log does not replicate: it has no PRIMARY KEY"))
        #expect(ok.text.hasSuffix("ok"))
        let missing = ConfigurationCheck(file: "node.toml", configuration: config.configuration, warnings: [], database: .missing(creatable: true))
        #expect(missing.passed && missing.text.contains("does not exist; the start creates it and restores"))
        let unwritable = ConfigurationCheck(file: "node.toml", configuration: config.configuration, warnings: [], database: .missing(creatable: false))
        #expect(!unwritable.passed && unwritable.text.contains("problem: db_path:"))
        let noSnapshots = try #require(check("db_path = \"\(database)\"\n[snapshot]\nenabled = false\n").loaded)
        let unrestorable = ConfigurationCheck(file: "node.toml", configuration: noSnapshots.configuration, warnings: [], database: .missing(creatable: true))
        #expect(!unrestorable.passed && unrestorable.text.contains("snapshot.enabled = false: no snapshot can restore it"))
        let broken = ConfigurationCheck(file: "node.toml", configuration: config.configuration, warnings: [], database: .unreadable("file is not a database"))
        #expect(broken.problems == ["db_path: database \(database) cannot be read: file is not a database"])
        #expect(broken.text.hasSuffix("1 problem(s): the node would not start"))
    }
}
