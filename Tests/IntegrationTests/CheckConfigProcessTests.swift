import TestSupport
import Foundation
import Testing

extension ProcessTests {
    /// `harmonylite -config FILE -check-config` with the production guide's configuration and with typos:
    /// nothing starts, exit 0 with a summary or 2 naming each problem.
    @Suite struct CheckConfig {
        /// The production guide's annotated multi-region example, its paths put in `directory`.
        static func guideConfig(_ directory: String) -> String {
            """
            db_path="\(directory)/node1.db"
            node_id=1
            seq_map_path="\(directory)/node1-seq-map.cbor"

            [replication_log]
            shards=2  # Increased for cross-region traffic
            max_entries=2048
            replicas=3
            compress=true  # Compression helps with WAN traffic

            [snapshot]
            enabled=true
            store="s3"  # Using S3 for cross-region durability
            interval=3600000

            [snapshot.s3]
            endpoint="s3.amazonaws.com"
            path="harmonylite/snapshots"
            bucket="your-backup-bucket"
            use_ssl=true
            access_key="your-access-key"
            secret="your-secret-key"

            [nats]
            reconnect_wait_seconds=5  # Higher for cross-region resilience

            """
        }

        @Test func theGuidesConfigurationPassesAndTyposAreEachNamed() throws {
            let directory = try TemporaryDirectory()
            try makeDatabase(directory.path + "/node1.db", "CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT); CREATE TABLE log (line TEXT);")
            let config = directory.write("config.toml", Self.guideConfig(directory.path))
            let peers = ["-cluster-addr", "127.0.0.1:6222", "-cluster-peers", "nats://10.0.0.2:6222,nats://10.0.0.3:6222"]
            let ok = try runCommand(Binaries.supervisor, ["-config", config, "-check-config"] + peers)
            #expect(ok.status == 0, "\(ok.output)")
            #expect(ok.output.contains("the configuration is valid") && ok.output.contains("1 table(s) replicate: books"), "\(ok.output)")
            #expect(ok.output.contains("warning: table log does not replicate"), "\(ok.output)")
            #expect(ok.output.contains("snapshots: store s3") && ok.output.contains("2 shard(s), 3 replica(s)"), "\(ok.output)")
            #expect(!FileManager.default.fileExists(atPath: directory.path + "/.node1.db.harmonylite"), "nothing started: no run directory")
            #expect(!FileManager.default.fileExists(atPath: directory.path + "/harmonylite-cluster.secret"), "nothing written")

            // The guide's file as written, started alone: 3 replicas can never be placed on one server.
            let alone = try runCommand(Binaries.supervisor, ["-config", config, "-check-config"])
            #expect(alone.status == 2 && alone.output.contains("replication_log.replicas asks for 3 JetStream replicas, but the embedded cluster has 1 server(s)"), "\(alone.output)")

            let typos = directory.write("typos.toml", Self.guideConfig(directory.path)
                .replacingOccurrences(of: "max_entries=2048", with: "max_entrys=2048")
                .replacingOccurrences(of: "use_ssl=true", with: "use_ssl=\"yes\"")
                .replacingOccurrences(of: "reconnect_wait_seconds=5", with: "reconect_wait_seconds=5"))
            let bad = try runCommand(Binaries.supervisor, ["-config", typos, "-check-config"] + peers)
            #expect(bad.status == 2, "\(bad.output)")
            for expected in ["typos.toml:7: unknown key replication_log.max_entrys (did you mean replication_log.max_entries?)",
                             "typos.toml:20: snapshot.s3.use_ssl must be true or false", "typos.toml:25: unknown key nats.reconect_wait_seconds (did you mean nats.reconnect_wait_seconds?)",
                             "3 problem(s)"] {
                #expect(bad.output.contains(expected), "\(expected)\n\(bad.output)")
            }

            let missingDirectory = directory.write("nodir.toml", Self.guideConfig(directory.path + "/nowhere"))
            let nodir = try runCommand(Binaries.supervisor, ["-config", missingDirectory, "-check-config"] + peers)
            #expect(nodir.status == 2 && nodir.output.contains("does not exist, nor does its directory"), "\(nodir.output)")

            unlink(directory.path + "/node1.db")
            let missing = try runCommand(Binaries.supervisor, ["-config", config, "-check-config"] + peers)
            #expect(missing.status == 0 && missing.output.contains("does not exist; the start creates it and restores"), "\(missing.output)")
            #expect(!FileManager.default.fileExists(atPath: directory.path + "/node1.db"), "the check creates nothing")

            try Data("not a database, only text that is long enough to be read as a header by SQLite".utf8).write(to: URL(fileURLWithPath: directory.path + "/node1.db"))
            let garbage = try runCommand(Binaries.supervisor, ["-config", config, "-check-config"] + peers)
            #expect(garbage.status == 2 && garbage.output.contains("problem: db_path: database") && garbage.output.contains("cannot be read"), "\(garbage.output)")
        }
    }
}
