import Foundation
import NATSClient
import NodeNATS
import Snapshots
import TestSupport
import Testing

extension ProcessTests {
    /// The bound on time (`max_clock_offset`, docs/clocks.md) on a real two-node cluster where node 2's
    /// machine runs 10 s ahead: its workers and its application run under libfaketime (Debian's
    /// `libfaketime`). Not its supervisor: under libfaketime a Swift program sees no command-line arguments
    /// (`CommandLine.arguments` is empty), so the supervisor runs from a copy next to wrappers that start
    /// each worker under libfaketime (workers take everything from the supervisor's socket). nats-server,
    /// a Go program, keeps the real time, as does node 1.
    @Suite(.serialized) struct ClockOffsets {
        static let schema = "CREATE TABLE kv (k INTEGER PRIMARY KEY, v);"
        static let library = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
        /// The environment of a process whose clock runs `offset` ahead (CLOCK_MONOTONIC left alone).
        static func faketime(_ offset: String) -> [String] {
            ["LD_PRELOAD=\(library)", "FAKETIME=\(offset)", "FAKETIME_DONT_FAKE_MONOTONIC=1"]
        }

        /// A launcher (`NodePlacement.launcher`) that runs a copy of the supervisor whose workers' clocks run
        /// `offset` ahead; keep `directory` alive as long as the node.
        static func workersAhead(_ offset: String, in directory: TemporaryDirectory) throws -> [String] {
            let supervisor = directory.path + "/harmonylite"
            try FileManager.default.copyItem(atPath: Binaries.supervisor, toPath: supervisor)
            for worker in ["capturer", "applier", "broker", "snapshotter"] {
                let wrapper = directory.write(
                    "harmonylite-" + worker,
                    """
                    #!/bin/bash
                    exec -a harmonylite-\(worker) /usr/bin/env \(faketime(offset).joined(separator: " ")) \(Binaries.directory)/harmonylite-\(worker) "$@"

                    """)
                chmod(wrapper, 0o755)
            }
            // NodeUnderTest passes the supervisor's path first: replaced by the copy's.
            return ["/bin/sh", "-c", "shift; exec \(supervisor) \"$@\"", "sh"]
        }

        /// The application writing under a clock `offset` ahead.
        static func sql(_ path: String, _ statements: String, clock offset: String) throws {
            let result = try runCommand(
                "/usr/bin/env", faketime(offset) + ["/usr/bin/sqlite3", "-cmd", ".timeout 5000", path, "PRAGMA trusted_schema=OFF;" + statements])
            guard result.status == 0 else { throw TestFailure("sqlite3 under faketime: \(result.output)") }
        }

        /// Node 1 still applies node 2's rows (convergence first), counts them as future stamps in
        /// `harmonylite_future_stamps_total` (which `promtool check metrics` accepts), logs them, and says
        /// in `/health` (degraded, 200) and `-status` that its clock is ~10 s behind node 2's. Node 2 sees
        /// nothing wrong. And node 1's application running ahead of node 1 has its writes clamped to
        /// node 1's clock, counted, and replicated.
        @Test func aNodeTenSecondsAheadIsAppliedCountedAndReported() throws {
            #expect(FileManager.default.fileExists(atPath: Self.library), "libfaketime is missing: run scripts/install-deps.sh")
            let first = try Operability.Endpoints(), second = try Operability.Endpoints()
            let binaries = try TemporaryDirectory()
            let cluster = try TestCluster(
                size: 2, schema: Self.schema, extraTOML: [first.toml, second.toml],
                placements: [NodePlacement(), NodePlacement(launcher: try Self.workersAhead("+10s", in: binaries))])
            try Self.sql(cluster.path(1), (1...5).map { "INSERT INTO kv VALUES (\($0), 'from node 2');" }.joined(), clock: "+10s")
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "5\n", timeout: 60), "\(cluster.logs())")

            // Counted (with the next heartbeats) and exported.
            #expect(eventually(timeout: 30) { (Operability.metric(first.metrics, "harmonylite_future_stamps_total") ?? 0) >= 5 }, "\(cluster.logs())")
            let lead = Operability.metric(first.metrics, "harmonylite_clock_ahead_seconds") ?? 0
            #expect(lead >= 8 && lead <= 12, "clock_ahead_seconds \(lead)")
            let promtool = try runCommand(
                "/bin/sh", ["-c", "curl -s --max-time 5 http://127.0.0.1:\(first.metrics)/metrics | /usr/bin/promtool check metrics"])
            // promtool parses the whole exposition (status 1 otherwise) and lints it clean (status 3 and a
            // line per complaint otherwise; HarmonyLite's `published` is now a gauge alias of `published_total`).
            #expect(promtool.status == 0 && promtool.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(promtool.output)")
            #expect(cluster.node(0).log.contains("applied changes stamped beyond max_clock_offset"), "\(cluster.node(0).log)")
            #expect(cluster.node(0).log.contains("origin=2") || cluster.node(0).log.contains("\"origin\":\"2\""), "\(cluster.node(0).log)")
            #expect(cluster.node(0).log.contains("this node's clock is behind another node's by more than max_clock_offset"), "\(cluster.node(0).log)")

            // Degraded, not failing.
            let health = Operability.health(first.health)
            #expect(health.status == 200 && health.json["status"] as? String == "degraded", "\(health.json)")
            let warnings = (health.json["warnings"] as? [String] ?? []).joined()
            #expect(warnings.contains("behind node 2's") && warnings.contains("max_clock_offset (500 ms)"), "\(health.json)")
            let status = try Operability.status(cluster.node(0), json: false)
            #expect(status.contains("WARNING:         clock: this node's clock is") && status.contains("behind node 2's"), "\(status)")
            let json = try Operability.status(cluster.node(0), json: true)
            #expect(json.contains("\"ahead_origin\":2") && json.contains("\"max_offset_ms\":500"), "\(json)")

            // Node 2 is ahead: node 1's stamps arrive behind its clock, nothing to report.
            try cluster.sql(0, "INSERT INTO kv VALUES (10, 'from node 1');")
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "6\n", timeout: 60), "\(cluster.logs())")
            #expect(eventually(timeout: 30) { Operability.metric(second.metrics, "harmonylite_clock_ahead_seconds") != nil })
            #expect((Operability.metric(second.metrics, "harmonylite_future_stamps_total") ?? -1) == 0)
            #expect(Operability.health(second.health).json["status"] as? String == "healthy")

            // Node 1's application runs 60 s ahead of node 1: its write is stamped with node 1's clock.
            try Self.sql(cluster.path(0), "INSERT INTO kv VALUES (20, 'app clock ahead');", clock: "+60s")
            #expect(try cluster.converge("SELECT v FROM kv WHERE k = 20;", to: "app clock ahead\n", timeout: 60), "\(cluster.logs())")
            #expect(
                eventually(timeout: 30) { (Operability.metric(first.metrics, "harmonylite_clamped_local_stamps_total") ?? 0) >= 1 }, "\(cluster.node(0).log)")
            #expect(
                eventually(timeout: 30) {
                    cluster.node(0).log.contains("local writes stamped by the application's clock beyond the node's clock plus max_clock_offset")
                },
                "\(cluster.node(0).log)")
            let stamp = try cluster.sql(0, "SELECT __harmonylite__hlc >> 16 FROM __harmonylite__kv_change_log WHERE k = 20;")
            let lead20 = (Int64(stamp.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) - Int64(Date().timeIntervalSince1970 * 1000)
            #expect(lead20 < 5_000, "row 20 stamped \(lead20) ms ahead of node 1's clock")
            #expect(try cluster.agree("SELECT __harmonylite__hlc FROM __harmonylite__kv_change_log WHERE k = 20;") != nil)
        }

        /// Issue 21's poisoned snapshot: a real snapshot of node 1 with one row clock set to 2^62 and its
        /// metadata recomputed (the store is writable). Node 2, restoring it (its seq map gone), refuses it
        /// for the stamp, names the table, the time and the bound, never becomes ready, and keeps its
        /// database as it was.
        @Test func aSnapshotStampedFarAheadIsRefusedAtRestore() throws {
            let cluster = try TestCluster(size: 2, schema: Self.schema)
            try cluster.sql(0, (1...20).map { "INSERT INTO kv VALUES (\($0), 'row \($0)');" }.joined())
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "20\n", timeout: 60))
            let file = cluster.directory.path + "/pinned.db"
            var metadata = try SnapshotMaker.make(from: cluster.path(0), into: file, nodeID: 1)
            let pinned = UInt64(1) << 62
            let doctored = try runCommand("/usr/bin/sqlite3", [file, "UPDATE __harmonylite__kv_change_log SET __harmonylite__hlc = \(pinned) WHERE k = 7;"])
            #expect(doctored.status == 0, "\(doctored.output)")
            (metadata.sha256, metadata.size) = try FileDigest.sha256(of: file)
            metadata.cursor = [:]
            // Signed as the cluster's nodes sign (a member whose clock runs ahead, or who holds the secret):
            // the signature passes, the stamp bound refuses it.
            let secret = try ClusterSecret.load(at: cluster.directory.path + "/harmonylite-cluster.secret")
            metadata.sign(with: try #require(SnapshotSigningKey(hex: ClusterSecret.snapshotSigningKey(secret: secret))))
            let connection = try NATSConnection.connect(try cluster.clientSettings(0, name: "test"))
            let store = try NATSSnapshotStore(connection: connection, bucket: "harmonylite-changes-snapshot-store", replicas: 1)
            try store.upload(file, metadata: metadata) { _, _ in }

            cluster.stop(1)
            let before = try cluster.sql(1, "SELECT count(*), sum(k), group_concat(v) FROM kv;")
            try FileManager.default.removeItem(atPath: cluster.directory.path + "/node2-seq-map.cbor")
            try cluster.start(1)
            let refusedLine = {
                cluster.node(1).log.split(separator: "\n").contains {
                    $0.contains("snapshot refused") && $0.contains("error=\"the snapshot's table kv")
                }
            }
            #expect(
                eventually(timeout: 60, refusedLine),
                "\(cluster.node(1).log.suffix(3000))")
            let log = cluster.node(1).log
            #expect(log.contains("the snapshot's table kv holds a row stamped 4199-") && log.contains("stamp \(pinned)"), "\(log.suffix(3000))")
            #expect(log.contains("beyond max_clock_offset (500 ms): refused"), "\(log.suffix(3000))")
            #expect(cluster.node(1).notify.with("READY=1").isEmpty, "a node that could not restore reported ready")
            cluster.stop(1)
            #expect(try cluster.sql(1, "SELECT count(*), sum(k), group_concat(v) FROM kv;") == before)
            #expect(try cluster.sql(1, "SELECT count(*) FROM __harmonylite__kv_change_log WHERE __harmonylite__hlc = \(pinned);") == "0\n")
        }
    }
}
