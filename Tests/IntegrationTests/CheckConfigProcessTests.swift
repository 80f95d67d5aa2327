import Foundation
import TestSupport
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
            #expect(
                alone.status == 2 && alone.output.contains("replication_log.replicas asks for 3 JetStream replicas, but the embedded cluster has 1 server(s)"),
                "\(alone.output)")

            let typos = directory.write(
                "typos.toml",
                Self.guideConfig(directory.path)
                    .replacingOccurrences(of: "max_entries=2048", with: "max_entrys=2048")
                    .replacingOccurrences(of: "use_ssl=true", with: "use_ssl=\"yes\"")
                    .replacingOccurrences(of: "reconnect_wait_seconds=5", with: "reconect_wait_seconds=5"))
            let bad = try runCommand(Binaries.supervisor, ["-config", typos, "-check-config"] + peers)
            #expect(bad.status == 2, "\(bad.output)")
            for expected in [
                "typos.toml:7: unknown key replication_log.max_entrys (did you mean replication_log.max_entries?)",
                "typos.toml:20: snapshot.s3.use_ssl must be true or false",
                "typos.toml:25: unknown key nats.reconect_wait_seconds (did you mean nats.reconnect_wait_seconds?)",
                "3 problem(s)",
            ] {
                #expect(bad.output.contains(expected), "\(expected)\n\(bad.output)")
            }

            let missingDirectory = directory.write("nodir.toml", Self.guideConfig(directory.path + "/nowhere"))
            let nodir = try runCommand(Binaries.supervisor, ["-config", missingDirectory, "-check-config"] + peers)
            #expect(nodir.status == 2 && nodir.output.contains("does not exist, nor does its directory"), "\(nodir.output)")
            #expect(!nodir.output.contains("the configuration is valid"), "the summary agrees with the status: \(nodir.output)")

            unlink(directory.path + "/node1.db")
            let missing = try runCommand(Binaries.supervisor, ["-config", config, "-check-config"] + peers)
            #expect(missing.status == 0 && missing.output.contains("does not exist; the start creates it and restores"), "\(missing.output)")
            #expect(!FileManager.default.fileExists(atPath: directory.path + "/node1.db"), "the check creates nothing")

            try Data("not a database, only text that is long enough to be read as a header by SQLite".utf8).write(
                to: URL(fileURLWithPath: directory.path + "/node1.db"))
            let garbage = try runCommand(Binaries.supervisor, ["-config", config, "-check-config"] + peers)
            #expect(
                garbage.status == 2 && garbage.output.contains("problem: db_path: database") && garbage.output.contains("cannot be read"), "\(garbage.output)")
        }

        /// The check writes nothing, not even SQLite's -shm/-wal beside a stopped WAL database; a
        /// `server_config` nats-server cannot parse is a problem (checked with `nats-server -t`); the
        /// summary agrees with the exit status; key problems and the whole configuration's come together.
        @Test func writesNothingChecksServerConfigAndAgreesWithItsStatus() throws {
            let directory = try TemporaryDirectory()
            let database = directory.path + "/node1.db"
            try makeDatabase(database, "PRAGMA journal_mode=WAL; CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT);")
            #expect(!FileManager.default.fileExists(atPath: database + "-wal") && !FileManager.default.fileExists(atPath: database + "-shm"))
            let base = "db_path=\"\(database)\"\nnode_id=1\nseq_map_path=\"\(directory.path)/node1-seq-map.cbor\"\n"
            let before = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
            let config = directory.write("config.toml", base)
            let ok = try runCommand(Binaries.supervisor, ["-config", config, "-check-config"])
            #expect(ok.status == 0 && ok.output.contains("the configuration is valid") && ok.output.contains("1 table(s) replicate: books"), "\(ok.output)")
            let after = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
            #expect(after == (before + ["config.toml"]).sorted(), "the check wrote \(after)")

            let broken = directory.write("bad-nats.conf", "monitor_port: 27823\nthis is { not valid\n")
            let badConfig = directory.write("bad.toml", base + "[nats]\nserver_config=\"\(broken)\"\n")
            let bad = try runCommand(Binaries.supervisor, ["-config", badConfig, "-check-config"])
            #expect(
                bad.status == 2 && bad.output.contains("problem: nats.server_config: nats-server cannot use \(broken): Parse error on line 2"), "\(bad.output)")
            #expect(!bad.output.contains("the configuration is valid") && bad.output.contains("the node would not start"), "\(bad.output)")
            let fine = directory.write("good-nats.conf", "monitor_port: 27823\n")
            let goodConfig = directory.write("good.toml", base + "[nats]\nserver_config=\"\(fine)\"\n")
            let good = try runCommand(Binaries.supervisor, ["-config", goodConfig, "-check-config"])
            #expect(good.status == 0 && good.output.contains("the configuration is valid"), "\(good.output)")

            // A key's typo and a whole-configuration problem (3 replicas, 1 server) in one run.
            let both = directory.write("both.toml", base + "[replication_log]\nreplicas=3\nmax_entrys=5\n")
            let two = try runCommand(Binaries.supervisor, ["-config", both, "-check-config"])
            #expect(
                two.status == 2 && two.output.contains("unknown key replication_log.max_entrys")
                    && two.output.contains("replication_log.replicas asks for 3 JetStream replicas") && two.output.contains("2 problem(s)"), "\(two.output)")
            #expect(!FileManager.default.fileExists(atPath: database + "-wal") && !FileManager.default.fileExists(atPath: database + "-shm"), "no -wal/-shm")
        }
    }
}
