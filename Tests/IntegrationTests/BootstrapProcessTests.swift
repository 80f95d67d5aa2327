import Foundation
import TestSupport
import Testing

extension ProcessTests {
    /// The production guide's procedures as written: "data corruption: delete the database and the seq map,
    /// start", and adding a node with an empty database to a running cluster.
    @Suite(.serialized) struct Bootstrap {
        static let schema = "CREATE TABLE kv (k INTEGER PRIMARY KEY, v);"
        /// Snapshots every half second, a lease that ages out in two.
        static let frequentSnapshots = "[snapshot]\ninterval = 500\nleader_ttl = 2000\n"
        /// No snapshot unless asked (no timer, and far from half of max_entries); the lease holder renews
        /// (and reads requests) every 10 s, as with the default leader_ttl.
        static let noSnapshots = "[snapshot]\ninterval = 0\n"

        static func remove(_ path: String) {
            for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
        }

        static func rows(_ count: Int, from first: Int = 1) -> String {
            (first..<first + count).map { "INSERT INTO kv VALUES (\($0), 'row \($0)');" }.joined()
        }

        @Test func deletingTheDatabaseAndTheSeqMapRestoresTheNode() throws {
            let cluster = try TestCluster(size: 2, schema: Self.schema, extraTOML: Array(repeating: Self.frequentSnapshots, count: 2))
            try cluster.sql(0, Self.rows(40))
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "40\n"))
            #expect(eventually(timeout: 30, interval: 0.2) { cluster.logs().components(separatedBy: "saved a snapshot").count > 3 }, "\(cluster.problems())")
            cluster.stop(1)
            Self.remove(cluster.path(1))
            unlink(cluster.directory.path + "/node2-seq-map.cbor")
            try cluster.start(1, createDatabase: false)
            try cluster.node(1).waitUntilReady(timeout: 60)
            let log = cluster.node(1).log
            #expect(log.contains("the database did not exist: created it empty"), "\(log.suffix(3000))")
            let restoring = log.split(separator: "\n").filter { $0.contains("looking for a snapshot to restore") }
            #expect(
                restoring.contains { $0.contains("reason=\"the database did not exist") },
                "\(log.suffix(3000))")
            #expect(try cluster.sql(1, "SELECT count(*) FROM kv;") == "40\n")
            try cluster.sql(0, "INSERT INTO kv VALUES (100, 'after');")
            try cluster.sql(1, "INSERT INTO kv VALUES (101, 'from the restored node');")
            #expect(try cluster.converge("SELECT count(*), sum(k) FROM kv;", to: "42|1021\n", timeout: 30), "\(cluster.problems())")
        }

        @Test func aMissingDatabaseWithoutASnapshotIsRefusedClearlyAndNotRestarted() throws {
            let cluster = try TestCluster(size: 2, schema: Self.schema, extraTOML: Array(repeating: Self.noSnapshots, count: 2))
            try cluster.sql(0, Self.rows(3))
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "3\n"))
            cluster.stop(1)
            Self.remove(cluster.path(1))
            unlink(cluster.directory.path + "/node2-seq-map.cbor")
            try cluster.start(1, createDatabase: false)
            let status = cluster.node(1).waitForExit(timeout: 60)
            let log = cluster.node(1).log
            #expect(status == 78, "exit status systemd's RestartPreventExitStatus holds: \(String(describing: status))\n\(log.suffix(3000))")
            #expect(log.contains("the database did not exist and the snapshot store (nats) holds no snapshot"), "\(log.suffix(3000))")
            #expect(log.contains("-save-snapshot") && log.contains("refused the start"), "\(log.suffix(3000))")
            #expect(!FileManager.default.fileExists(atPath: cluster.path(1)), "the empty database made at this start is removed again")
            #expect(!cluster.node(1).notify.with("STATUS=refused: snapshotter").isEmpty, "systemctl status says why")
        }

        @Test func aMissingDatabaseWithSnapshotsDisabledIsRefusedAtOnce() throws {
            let node = try NodeUnderTest(toml: "[snapshot]\nenabled = false\n", createDatabase: false)
            let status = node.waitForExit(timeout: 30)
            #expect(status == 78, "\(String(describing: status))\n\(node.log.suffix(2000))")
            #expect(node.log.contains("does not exist and snapshot.enabled = false: no snapshot can restore it"), "\(node.log.suffix(2000))")
            #expect(!FileManager.default.fileExists(atPath: node.database))
        }

        @Test(arguments: [true, false])
        func aNewEmptyNodeGetsEveryRowThenReplicates(snapshotExists: Bool) throws {
            let toml = snapshotExists ? Self.frequentSnapshots : Self.noSnapshots
            let cluster = try TestCluster(size: 3, schema: Self.schema, extraTOML: Array(repeating: toml, count: 3), late: [2])
            try cluster.sql(0, Self.rows(30))
            try cluster.sql(1, Self.rows(30, from: 31))
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "60\n", on: [0, 1]))
            if snapshotExists {
                #expect(
                    eventually(timeout: 30, interval: 0.2) { cluster.logs().components(separatedBy: "saved a snapshot").count > 3 }, "\(cluster.problems())")
            }
            let startedAt = Date()
            try cluster.start(2)
            var statusShowedTheWait = false
            if !snapshotExists {
                // `-status` while it waits: the snapshotter's line says what for.
                statusShowedTheWait = eventually(timeout: 30, interval: 0.3) {
                    let status = try? runCommand(Binaries.supervisor, ["-config", cluster.node(2).configPath, "-status"])
                    return status?.output.contains("snapshotter: waiting for a snapshot") == true
                        || status?.output.contains("snapshotter: still waiting for a snapshot") == true
                }
            }
            try cluster.node(2).waitUntilReady(timeout: 90)
            let readyAfter = Date().timeIntervalSince(startedAt)
            print(
                "bootstrap: snapshot \(snapshotExists ? "in the store" : "asked for"): the new node was ready with every row \(String(format: "%.1f", readyAfter)) s after its start"
            )
            let log = cluster.node(2).log
            #expect(log.contains("the database has no tables while the shard streams took"), "\(log.suffix(3000))")
            if snapshotExists {
                #expect(!log.contains("asked the snapshot lease holder"), "\(log.suffix(3000))")
            } else {
                #expect(log.contains("no snapshot in the store yet for this new node's empty database: asked the snapshot lease holder"), "\(log.suffix(3000))")
                #expect(cluster.logs().contains("saving a snapshot: a node is waiting for one request=\"node 3 on "), "\(cluster.problems())")
                #expect(!cluster.node(2).notify.with("STATUS=starting: snapshotter: waiting for a snapshot").isEmpty, "systemctl status shows the wait")
                #expect(statusShowedTheWait, "-status shows the wait")
                #expect(!cluster.node(2).notify.with("EXTEND_TIMEOUT_USEC=60000000").isEmpty, "TimeoutStartSec= does not kill a loud wait")
            }
            #expect(try cluster.sql(2, "SELECT count(*), sum(k) FROM kv;") == "60|1830\n")
            #expect(!log.contains("parked"), "nothing parked: \(log.suffix(3000))")
            try cluster.sql(2, "INSERT INTO kv VALUES (100, 'from the new node');")
            try cluster.sql(0, "INSERT INTO kv VALUES (101, 'to the new node');")
            #expect(try cluster.converge("SELECT count(*), sum(k) FROM kv;", to: "62|2031\n", timeout: 30), "\(cluster.problems())")
        }
    }
}
