import Foundation
import NATSClient
import NodeNATS
import Snapshots
import TestSupport
import Testing

extension ProcessTests {
    /// Snapshots through the real binaries: saved by the lease holder, restored by nodes that need them.
    @Suite(.serialized) struct SnapshotRecovery {
        static let schema = "CREATE TABLE kv (k INTEGER PRIMARY KEY, v);"
        /// Snapshots every half second, a lease that ages out in two.
        static let frequentSnapshots = "[snapshot]\ninterval = 500\nleader_ttl = 2000\n"

        /// How many snapshots the cluster has saved so far.
        static func saves(_ cluster: TestCluster) -> Int {
            cluster.nodes.compactMap { $0?.log }.map { $0.components(separatedBy: "saved a snapshot").count - 1 }.reduce(0, +)
        }

        /// Every node's lines about snapshots and the lease, for failure messages.
        static func snapshotLines(_ cluster: TestCluster) -> String {
            cluster.nodes.indices.map { index in
                "node \(index + 1):\n"
                    + (cluster.nodes[index]?.log ?? "").split(separator: "\n").filter { $0.contains("snapshot") }.suffix(30).joined(separator: "\n")
            }.joined(separator: "\n")
        }

        /// Waits until the cluster saved `count` more snapshots after now (so the newest one holds what
        /// was written before, and the writer's cursor has been stored over its own messages).
        static func waitForFreshSnapshots(_ cluster: TestCluster, count: Int = 3) -> Bool {
            let before = saves(cluster)
            return eventually(timeout: 30, interval: 0.1) { saves(cluster) >= before + count }
        }

        /// The production guide's recovery procedure: stop the node, delete its seq map, start it. It
        /// restores the snapshot, and a change made locally while it was down is kept and replicated. A seq
        /// map that cannot be read (truncated, overwritten) does the same.
        @Test(arguments: ["deleted", "garbage"])
        func deletingTheSeqMapRestoresTheNode(seqMap: String) throws {
            let cluster = try TestCluster(schema: Self.schema, extraTOML: Array(repeating: Self.frequentSnapshots, count: 3))
            try cluster.sql(0, (1...50).map { "INSERT INTO kv VALUES (\($0), 'row \($0)');" }.joined())
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "50\n"))
            #expect(Self.waitForFreshSnapshots(cluster), "\(cluster.logs().suffix(3000))")
            cluster.stop(2)
            try cluster.sql(2, "INSERT INTO kv VALUES (1000, 'written while the node was down');")
            let seqMapPath = cluster.directory.path + "/node3-seq-map.cbor"
            if seqMap == "deleted" {
                try FileManager.default.removeItem(atPath: seqMapPath)
            } else {
                try Data("not CBOR at all".utf8).write(to: URL(fileURLWithPath: seqMapPath))
            }
            try cluster.start(2)
            try cluster.node(2).waitUntilReady(timeout: 60)
            let log = cluster.node(2).log
            let reason = seqMap == "deleted" ? "there is no seq map" : "the seq map cannot be read"
            #expect(log.contains("looking for a snapshot to restore reason=\"\(reason)"), "\(log.suffix(3000))")
            #expect(log.contains("restored the snapshot") && log.contains("kept 1 unpublished local change(s)"), "\(log.suffix(3000))")
            try cluster.sql(0, "INSERT INTO kv VALUES (51, 'after the restore');")
            let query = "SELECT count(*), sum(k) FROM kv;"
            #expect(
                try cluster.converge(query, to: "52|2326\n", timeout: 30),
                "\((0..<3).map { (try? cluster.sql($0, query)) ?? "?" })\n\(cluster.node(2).log.suffix(3000))")
            #expect(FileManager.default.fileExists(atPath: cluster.directory.path + "/node3-seq-map.cbor"))
        }

        /// A node stopped while more than `max_entries` changes went by finds the streams no longer hold
        /// what it missed, restores the snapshot the lease holder saved meanwhile, and converges.
        @Test func nodeBehindTheStreamsRejoinsThroughASnapshot() throws {
            // Replicated lease, registry and snapshot store: the cluster keeps saving while the victim is down.
            // (With R1 they live on one server, and when JetStream placed them on the victim's — it does, with
            // every server's storage limit equal — nobody could take the lease until the victim came back.)
            let toml = Self.frequentSnapshots + "[snapshot.nats]\nreplicas = 3\n[replication_log]\nmax_entries = 20\nreplicas = 3\n"
            let cluster = try TestCluster(schema: Self.schema, extraTOML: Array(repeating: toml, count: 3))
            try cluster.sql(0, "INSERT INTO kv VALUES (0, 'before');")
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "1\n"))
            cluster.stop(2)
            for k in 1...60 {
                try cluster.sql(k % 2, "INSERT INTO kv VALUES (\(k), 'row \(k)');")
                Thread.sleep(forTimeInterval: 0.01)
            }
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "61\n", on: [0, 1]))
            #expect(Self.waitForFreshSnapshots(cluster), "\(cluster.logs().suffix(3000))")
            try cluster.start(2)
            try cluster.node(2).waitUntilReady(timeout: 60)
            let log = cluster.node(2).log
            #expect(log.contains("past this node's position") && log.contains("restored the snapshot"), "\(log.suffix(3000))")
            #expect(try cluster.converge("SELECT count(*), sum(k) FROM kv;", to: "61|1830\n", timeout: 30), "\(cluster.node(2).log.suffix(3000))")
            #expect(!cluster.node(2).log.contains("no longer holds messages"), "\(cluster.node(2).log.suffix(3000))")
        }

        /// A snapshot whose bytes do not match its (signed) checksum is refused: the node says why, never
        /// becomes ready, and its database is exactly what it was.
        @Test func corruptedSnapshotIsRefusedAndTheDatabaseKept() throws {
            let cluster = try TestCluster(size: 2, schema: Self.schema)
            try cluster.sql(0, (1...20).map { "INSERT INTO kv VALUES (\($0), 'row \($0)');" }.joined())
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "20\n"))
            // A real snapshot of node 1, with one byte changed after its checksum was taken.
            let file = cluster.directory.path + "/corrupt.db"
            var metadata = try SnapshotMaker.make(from: cluster.path(0), into: file, nodeID: 1)
            metadata.cursor = [:]
            // Signed as the cluster's nodes sign: only the file is wrong.
            let secret = try ClusterSecret.load(at: cluster.directory.path + "/harmonylite-cluster.secret")
            metadata.sign(with: try #require(SnapshotSigningKey(hex: ClusterSecret.snapshotSigningKey(secret: secret))))
            let handle = try #require(FileHandle(forUpdatingAtPath: file))
            try handle.seek(toOffset: 200)
            try handle.write(contentsOf: Data([0x5A]))
            try handle.close()
            let connection = try NATSConnection.connect(try cluster.clientSettings(0, name: "test"))
            let store = try NATSSnapshotStore(connection: connection, bucket: "harmonylite-changes-snapshot-store", replicas: 1)
            try store.upload(file, metadata: metadata) { _, _ in }

            cluster.stop(1)
            try cluster.sql(1, "INSERT INTO kv VALUES (100, 'local, unpublished');")
            let before = try cluster.sql(1, "SELECT count(*), sum(k), group_concat(v) FROM kv;")
            try FileManager.default.removeItem(atPath: cluster.directory.path + "/node2-seq-map.cbor")
            try cluster.start(1)
            #expect(eventually(timeout: 30) { cluster.node(1).log.contains("snapshot refused") }, "\(cluster.node(1).log.suffix(3000))")
            let log = cluster.node(1).log
            #expect(log.contains("SHA-256") && log.contains("refused"), "\(log.suffix(3000))")
            #expect(cluster.node(1).notify.with("READY=1").isEmpty, "a node that could not restore reported ready")
            cluster.stop(1)
            #expect(try cluster.sql(1, "SELECT count(*), sum(k), group_concat(v) FROM kv;") == before)
            #expect(try cluster.sql(1, "PRAGMA integrity_check;") == "ok\n")
        }

        /// Three nodes, one lease: only its holder saves. Killed without releasing it, another node takes
        /// over once it ages out.
        @Test func oneNodeSavesAndAnotherTakesOverWhenItDies() throws {
            let toml = Self.frequentSnapshots + "[replication_log]\nreplicas = 3\n[snapshot.nats]\nreplicas = 3\n"
            let cluster = try TestCluster(schema: Self.schema, extraTOML: Array(repeating: toml, count: 3))
            let holders = { (0..<3).filter { cluster.nodes[$0]?.log.contains("holding the snapshot lease") == true } }
            #expect(eventually(timeout: 20) { holders().count == 1 }, "\(cluster.logs().suffix(3000))")
            #expect(Self.waitForFreshSnapshots(cluster))
            let leader = try #require(holders().first)
            #expect(holders() == [leader], "more than one node took the lease: \(holders())")
            for node in 0..<3 where node != leader {
                #expect(!cluster.node(node).log.contains("saved a snapshot"), "node \(node + 1) saved while node \(leader + 1) held the lease")
            }
            kill(cluster.node(leader).pid, SIGKILL)
            #expect(cluster.node(leader).waitForExit(timeout: 10) != nil)
            let others = (0..<3).filter { $0 != leader }
            #expect(
                eventually(timeout: 20) { others.contains { cluster.node($0).log.contains("holding the snapshot lease") } }, "\(Self.snapshotLines(cluster))")
            // While the cluster re-elects its stream leaders the lease may move once more; once it settles,
            // one node saves.
            let savesBy = { (node: Int) in cluster.node(node).log.components(separatedBy: "saved a snapshot").count - 1 }
            #expect(eventually(timeout: 40) { others.contains { savesBy($0) > 0 } }, "\(Self.snapshotLines(cluster))")
            Thread.sleep(forTimeInterval: 1)
            let before = others.map(savesBy)
            Thread.sleep(forTimeInterval: 3)
            let savers = others.indices.filter { savesBy(others[$0]) > before[$0] }
            #expect(savers.count == 1, "nodes saving at once: \(savers.map { others[$0] + 1 })\n\(Self.snapshotLines(cluster))")
        }

        /// `-save-snapshot` uploads through the running node's embedded server and says what it saved; the
        /// store then holds that snapshot. Without a running node, or with snapshots disabled, it fails
        /// saying why.
        @Test func saveSnapshotFlagUploadsAndExits() throws {
            let node = try NodeUnderTest(nodeID: 4)
            try node.waitUntilReady()
            #expect(try runCommand("/usr/bin/sqlite3", [node.database, "INSERT INTO books VALUES (1, 'Solaris');"]).status == 0)
            let saved = try runCommand(Binaries.supervisor, ["-config", node.configPath, "-save-snapshot"])
            #expect(saved.status == 0, "\(saved.output)")
            #expect(saved.output.contains("saved a snapshot of \(node.database) to the nats store"), "\(saved.output)")
            let port = try #require(node.log.firstMatch(of: /listening for clients on port (\d+)/)?.1)
            let connection = try NATSConnection.connect(try embeddedClientSettings(directory: node.directory.path, nodeID: 4, port: port, name: "test"))
            let stored = try NATSSnapshotStore(connection: connection, bucket: "harmonylite-changes-snapshot-store", replicas: 1).latest()
            #expect(stored?.nodeID == 4)
            node.terminate()

            let stopped = try runCommand(Binaries.supervisor, ["-config", node.configPath, "-save-snapshot"])
            #expect(stopped.status == 1 && stopped.output.contains("no running node for \(node.database)"), "\(stopped.output)")
            let disabledConfig = node.directory.write("disabled.toml", "db_path = \"\(node.database)\"\nnode_id = 4\n[snapshot]\nenabled = false\n")
            let disabled = try runCommand(Binaries.supervisor, ["-config", disabledConfig, "-save-snapshot"])
            #expect(disabled.status == 1 && disabled.output.contains("snapshot.enabled is false"), "\(disabled.output)")
        }
    }
}
