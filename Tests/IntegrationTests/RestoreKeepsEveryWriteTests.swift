import ChangeEvents
import Foundation
import HarmonyConfig
import NATSClient
import TestSupport
import Testing

extension ProcessTests {
    /// A restore loses no write: what the node published after the snapshot's cursor comes back from the
    /// streams and is applied by stamp; rows deleted stay deleted; an older event arriving afterwards
    /// changes nothing; a stream deleted and created again is never consumed after the old cursor.
    @Suite(.serialized) struct RestoreKeepsEveryWrite {
        static let schema = "CREATE TABLE kv (k INTEGER PRIMARY KEY, v);"
        /// No periodic snapshots: the test says when one is taken.
        static let manualSnapshots = "[snapshot]\ninterval = 0\n"
        static let rows = "SELECT group_concat(k || '=' || v, ' ') FROM (SELECT * FROM kv ORDER BY k);"

        static func saveSnapshot(_ cluster: TestCluster, on node: Int) throws {
            let saved = try runCommand(Binaries.supervisor, ["-config", cluster.node(node).configPath, "-save-snapshot"])
            guard saved.status == 0 else { throw TestFailure("-save-snapshot on node \(node + 1): \(saved.output)") }
        }

        /// An operator user on every node's embedded server: the nodes' own users may not delete streams.
        static let operatorTOML = "user_name = \"operator\"\nuser_password = \"operator-pw\"\n"

        /// Node `node`'s own credentials on its server: what a node (or a late publisher) may do.
        static func connect(_ cluster: TestCluster, node: Int = 0) throws -> NATSConnection {
            try NATSConnection.connect(try cluster.clientSettings(node, name: "test"))
        }

        /// Shard 1's stream as a broker creates it: its shared and per-node subjects.
        static func shardStream(_ name: String) -> StreamSpecification {
            StreamSpecification(name: name, subjects: ChangeSubjects.streamSubjects(prefix: "harmonylite-change-log", shard: 1), replicas: 1, maxMessages: 1024)
        }

        /// The operator of a cluster made with `natsTOML: operatorTOML`: may delete streams.
        static func connectAsOperator(_ cluster: TestCluster, node: Int = 0) throws -> NATSConnection {
            var settings = ConnectionSettings(urls: ["nats://127.0.0.1:\(cluster.clientPorts[node])"], name: "operator")
            settings.userName = "operator"
            settings.userPassword = "operator-pw"
            return try NATSConnection.connect(settings)
        }

        /// The production guide's recovery procedure, exactly as the issue tried it: `-save-snapshot` on node
        /// 1; node 2 inserts a row and deletes another; node 1 receives both; node 2 is stopped, its seq map
        /// deleted, started again. Node 2 keeps its insert and its delete. Then an event older than both,
        /// published late by a node that was partitioned, changes nothing on any node.
        @Test func recoveryProcedureKeepsWhatTheNodePublishedAfterTheSnapshot() throws {
            let cluster = try TestCluster(schema: Self.schema, extraTOML: Array(repeating: Self.manualSnapshots, count: 3), natsTOML: Self.operatorTOML)
            let before = Self.stampNow()
            try cluster.sql(0, "INSERT INTO kv VALUES (1, 'one'), (2, 'two');")
            #expect(try cluster.converge(Self.rows, to: "1=one 2=two\n"))
            try Self.saveSnapshot(cluster, on: 0)
            try cluster.sql(1, "INSERT INTO kv VALUES (3, 'inserted by node 2 after the snapshot'); DELETE FROM kv WHERE k = 2;")
            let expected = "1=one 3=inserted by node 2 after the snapshot\n"
            #expect(try cluster.converge(Self.rows, to: expected, on: [0]))

            cluster.stop(1)
            try FileManager.default.removeItem(atPath: cluster.directory.path + "/node2-seq-map.cbor")
            try cluster.start(1)
            try cluster.node(1).waitUntilReady(timeout: 60)
            let log = cluster.node(1).log
            #expect(
                log.contains("looking for a snapshot to restore reason=\"there is no seq map") && log.contains("restored the snapshot"),
                "\(log.suffix(3000))")
            #expect(
                try cluster.converge(Self.rows, to: expected, timeout: 30),
                "\((0..<3).map { (try? cluster.sql($0, Self.rows)) ?? "?" })\n\(cluster.node(1).log.suffix(3000))")

            // Node 9, partitioned since before all of this, publishes its older versions of rows 2 and 3.
            let late = ChangeBatch(
                origin: 9, schemaHash: "",
                events: [
                    ChangeEvent(
                        changeID: 1, table: "kv", operation: .upsert, stamp: before, writer: 9, columns: ["k", "v"],
                        values: [.integer(2), .text("back from the dead")], keyCount: 1),
                    ChangeEvent(
                        changeID: 2, table: "kv", operation: .upsert, stamp: before, writer: 9, columns: ["k", "v"],
                        values: [.integer(3), .text("rolled back")], keyCount: 1),
                ])
            // As node 9 would: on its own subject (the operator may publish anywhere; node 1 may not).
            try Self.connectAsOperator(cluster).publish(subject: "harmonylite-change-log-1.9", payload: late.encoded(compress: false))
            try cluster.sql(0, "INSERT INTO kv VALUES (4, 'after the late event');")
            #expect(
                try cluster.converge(Self.rows, to: "1=one 3=inserted by node 2 after the snapshot 4=after the late event\n", timeout: 30),
                "\((0..<3).map { (try? cluster.sql($0, Self.rows)) ?? "?" })")
        }

        /// A node whose applier fell more than `max_entries` behind while its capturer kept publishing (its
        /// write below is published after the newest snapshot's cursor) restores, and keeps that write: it
        /// comes back from the stream and is applied by stamp, not skipped as the node's own.
        @Test func gapRestoreKeepsTheNodesOwnLaterWrites() throws {
            let toml = Self.manualSnapshots + "leader_ttl = 2000\n[replication_log]\nmax_entries = 20\n"
            let cluster = try TestCluster(schema: Self.schema, extraTOML: Array(repeating: toml, count: 3))
            try cluster.sql(0, "INSERT INTO kv VALUES (0, 'before');")
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "1\n"))
            let (victim, writer, holder, applier) = try cluster.stopApplierOfANodeWithoutTheLease()
            // One commit at a time, so that they go out as many messages, more than the stream keeps.
            for k in 1...60 { try cluster.sql(writer, "INSERT INTO kv VALUES (\(k), 'row \(k)');") }
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "61\n", on: (0..<3).filter { $0 != victim }))
            try Self.saveSnapshot(cluster, on: holder)
            try cluster.sql(victim, "INSERT INTO kv VALUES (1000, 'the victim''s, published after the snapshot');")
            #expect(try cluster.converge("SELECT count(*) FROM kv WHERE k = 1000;", to: "1\n", on: [writer]))
            kill(applier, SIGCONT)
            // The node restores in place: it never stops.
            #expect(
                eventually(timeout: 60) { cluster.node(victim).log.contains("snapshot restore in place complete") },
                "\(cluster.node(victim).log.suffix(3000))")
            #expect(cluster.node(victim).isRunning && cluster.node(victim).log.contains("restored the snapshot"), "\(cluster.node(victim).log.suffix(3000))")
            #expect(
                try cluster.converge("SELECT count(*), sum(k) FROM kv;", to: "62|2830\n", timeout: 30),
                "\((0..<3).map { (try? cluster.sql($0, "SELECT count(*), sum(k) FROM kv;")) ?? "?" })\n\(cluster.node(victim).log.suffix(3000))")
        }

        /// The recovery procedure with the snapshotter killed (kill -9) while it restores, wherever it was
        /// (downloading, preparing the copy, replacing the content): the live database is never left half
        /// restored, the supervisor starts the snapshotter again, which restores again (the seq map is
        /// written only once a restore is complete), and the node keeps the snapshot's rows and the change
        /// it made while down.
        @Test func restoreKilledMidwayIsDoneAgain() throws {
            let directory = try TemporaryDirectory()
            var node = try NodeUnderTest(nodeID: 6, directory: directory)
            try node.waitUntilReady()
            let sql = { (query: String) in try runCommand("/usr/bin/sqlite3", ["-cmd", ".timeout 5000", node.database, query]) }
            // Some megabytes, so that the restore takes long enough to be caught in the middle.
            #expect(
                try sql(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000) INSERT INTO books SELECT i, hex(randomblob(1000)) FROM n;"
                ).status == 0)
            let saved = try runCommand(Binaries.supervisor, ["-config", node.configPath, "-save-snapshot"])
            #expect(saved.status == 0, "\(saved.output)")
            #expect(node.terminate() == 0)
            #expect(try sql("INSERT INTO books VALUES (5000, 'written while down');").status == 0)
            try FileManager.default.removeItem(atPath: directory.path + "/node6-seq-map.cbor")

            node = try NodeUnderTest(nodeID: 6, directory: directory)
            #expect(eventually(timeout: 30, interval: 0.005) { node.log.contains("looking for a snapshot to restore") }, "\(node.log.suffix(3000))")
            let snapshotter = try #require(node.children()["snapshotter"])
            kill(snapshotter, SIGKILL)
            try node.waitUntilReady(timeout: 60)
            let log = node.log
            #expect(
                !supervisorLines(log, SupervisorMessage.ended, ["child": "snapshotter", "status": "was killed by signal 9"]).isEmpty, "\(log.suffix(3000))")
            #expect(log.contains("restored the snapshot"), "\(log.suffix(3000))")
            // Looked for a snapshot again: the killed restore had not finished (the seq map is its last step).
            #expect(log.components(separatedBy: "looking for a snapshot to restore").count > 2, "\(log.suffix(3000))")
            #expect(try sql("SELECT count(*), sum(id) FROM books; PRAGMA integrity_check;").output == "4001|\(4000 * 4001 / 2 + 5000)\nok\n")
            #expect(node.terminate() == 0)
        }

        /// The node's own writes that the stream trimmed before any snapshot covered them: a victim whose
        /// applier is stopped publishes 41 commits (a delete, an update, 40 inserts) into a stream that keeps
        /// 20; the lease holder's snapshotter is stopped meanwhile (and the lease outlives it), so the newest
        /// snapshot is one taken before them. The victim's gap restore keeps every one of them from its live
        /// database (the streams no longer hold the first 21) after waiting in vain for a snapshot covering the
        /// gap, and all nodes end identical. (Before: those
        /// rows were gone on the victim alone and its deleted row came back there.) With
        /// `aCoveringSnapshotArrives`, another node saves a snapshot while the victim waits: the victim
        /// restores that one (only that one: the same snapshot is never restored twice) and accepts no gap.
        @Test(arguments: [false, true])
        func gapRestoreKeepsOwnWritesTheStreamTrimmedBeforeAnySnapshot(aCoveringSnapshotArrives: Bool) throws {
            let toml =
                Self.manualSnapshots + "leader_ttl = 120000\n[replication_log]\nmax_entries = 20\n"
                + "[workers.snapshotter]\nheartbeat_timeout = 300000\n[workers.applier]\nheartbeat_timeout = 300000\n"
            let cluster = try TestCluster(schema: Self.schema, extraTOML: Array(repeating: toml, count: 3))
            try cluster.sql(0, "INSERT INTO kv VALUES (0, 'zero'), (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four'), (5, 'five');")
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "6\n"))
            let (victim, keeper, holder, applier) = try cluster.stopApplierOfANodeWithoutTheLease()
            guard let snapshotter = cluster.node(holder).children()["snapshotter"] else { throw TestFailure("the lease holder has no snapshotter") }
            try Self.saveSnapshot(cluster, on: keeper)
            kill(snapshotter, SIGSTOP)
            defer { kill(snapshotter, SIGCONT) }
            try cluster.sql(victim, "DELETE FROM kv WHERE k = 1; UPDATE kv SET v = 'the victim''s' WHERE k = 2;")
            for k in 100..<140 { try cluster.sql(victim, "INSERT INTO kv VALUES (\(k), 'the victim''s \(k)');") }
            let expected = "45|4794|the victim's\n"
            let content = "SELECT count(*), sum(k), (SELECT v FROM kv WHERE k = 2) FROM kv;"
            #expect(try cluster.converge("SELECT count(*), sum(k) FROM kv;", to: "45|4794\n", on: [holder, keeper], timeout: 30))
            let looks = { cluster.node(victim).log.components(separatedBy: "looking for a snapshot to restore").count - 1 }
            let looksBefore = looks()
            kill(applier, SIGCONT)
            // No snapshot covers the gap (the holder's snapshotter is stopped): the restore waits for one
            // (`SnapshotPlanner.gapCoverWait`, 60 s), looking at the store's newest snapshot every 3 s.
            #expect(eventually(timeout: 30) { cluster.node(victim).log.contains("waiting for a newer one") }, "\(cluster.node(victim).log.suffix(3000))")
            if aCoveringSnapshotArrives {
                try Self.saveSnapshot(cluster, on: keeper)
                #expect(
                    eventually(timeout: 30) { cluster.node(victim).log.contains("a newer snapshot is in the store") },
                    "\(cluster.node(victim).log.suffix(3000))")
            }
            #expect(eventually(timeout: 150) { cluster.node(victim).log.contains("restored the snapshot") }, "\(cluster.node(victim).log.suffix(3000))")
            try cluster.node(victim).waitUntilReady(timeout: 60)
            let log = cluster.node(victim).log
            #expect(
                looks() - looksBefore == (aCoveringSnapshotArrives ? 2 : 1),
                "the same snapshot restored again, or the newer one not\n\(log.suffix(3000))")
            if aCoveringSnapshotArrives {
                #expect(!log.contains("missing on this node"), "a gap was accepted although a snapshot covered it\n\(log.suffix(3000))")
            } else {
                let kept = log.components(separatedBy: "unpublished local change(s) and ").dropFirst().first?
                    .split(separator: " ").first.flatMap { Int($0) }
                #expect((kept ?? 0) >= 21, "the restore kept \(kept.map(String.init) ?? "?") live versions\n\(log.suffix(3000))")
            }
            #expect(
                try cluster.converge(content, to: expected, timeout: 30),
                "\((0..<3).map { (try? cluster.sql($0, content)) ?? "?" })\n\(cluster.node(victim).log.suffix(3000))")
            #expect(try cluster.sql(victim, "SELECT count(*) FROM kv WHERE k = 1;") == "0\n")
        }

        /// The recovery procedure on a node whose database has another page size than the snapshot (in WAL
        /// mode, where the backup API cannot change it).
        @Test func restoreNeedingAnotherPageSize() throws {
            let cluster = try TestCluster(size: 2, schema: Self.schema, extraTOML: Array(repeating: Self.manualSnapshots, count: 2))
            cluster.stop(0)
            try cluster.sql(0, "PRAGMA journal_mode=DELETE; PRAGMA page_size=16384; VACUUM; PRAGMA journal_mode=WAL;")
            #expect(try cluster.sql(0, "PRAGMA page_size;") == "16384\n")
            try cluster.start(0)
            try cluster.node(0).waitUntilReady(timeout: 60)
            try cluster.sql(0, "INSERT INTO kv VALUES (1, 'one');")
            #expect(try cluster.converge(Self.rows, to: "1=one\n"))
            try Self.saveSnapshot(cluster, on: 0)
            cluster.stop(1)
            try cluster.sql(1, "INSERT INTO kv VALUES (2, 'written while down');")
            try FileManager.default.removeItem(atPath: cluster.directory.path + "/node2-seq-map.cbor")
            try cluster.start(1)
            try cluster.node(1).waitUntilReady(timeout: 60)
            #expect(cluster.node(1).log.contains("restored the snapshot"), "\(cluster.node(1).log.suffix(3000))")
            #expect(try cluster.converge(Self.rows, to: "1=one 2=written while down\n", timeout: 30), "\(cluster.node(1).log.suffix(3000))")
            #expect(try cluster.sql(1, "PRAGMA page_size; PRAGMA journal_mode; PRAGMA integrity_check;") == "4096\nwal\nok\n")
        }

        /// A shard stream deleted and created again under a running cluster (snapshots off): every node says
        /// so and consumes the new stream from its start, so the rows written after it reach every node —
        /// none is skipped because its sequence is at or below the old stream's cursor.
        @Test func streamRecreatedUnderARunningClusterIsConsumedFromItsStart() throws {
            let cluster = try TestCluster(
                schema: Self.schema, extraTOML: Array(repeating: "[snapshot]\nenabled = false\n", count: 3), natsTOML: Self.operatorTOML)
            try cluster.sql(0, (1...10).map { "INSERT INTO kv VALUES (\($0), 'old stream');" }.joined())
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "10\n"))
            let connection = try Self.connectAsOperator(cluster)
            let stream = "harmonylite-changes-1"
            let old = try connection.streamState(stream)
            try connection.deleteStream(stream)
            let new = try connection.ensureStream(Self.shardStream(stream), updateExisting: false).state
            #expect(new.created != old.created && new.lastSequence == 0)
            try cluster.sql(1, (11...15).map { "INSERT INTO kv VALUES (\($0), 'new stream');" }.joined())
            #expect(
                try cluster.converge("SELECT count(*), sum(k) FROM kv;", to: "15|120\n", timeout: 40),
                "\((0..<3).map { (try? cluster.sql($0, "SELECT count(*), sum(k) FROM kv;")) ?? "?" })\n\(cluster.problems())")
            for node in [0, 2] {
                #expect(cluster.node(node).log.contains("consumes the new stream from its start"), "node \(node + 1):\n\(cluster.problems())")
            }
            // And a node restarted afterwards neither skips nor applies twice.
            cluster.stop(2)
            try cluster.start(2)
            try cluster.node(2).waitUntilReady(timeout: 60)
            try cluster.sql(0, "INSERT INTO kv VALUES (16, 'after the restart');")
            #expect(
                try cluster.converge("SELECT count(*), sum(k) FROM kv;", to: "16|136\n", timeout: 60),
                "\((0..<3).map { (try? cluster.sql($0, "SELECT count(*), sum(k) FROM kv;")) ?? "?" })\n\(cluster.node(2).log.suffix(4000))")
        }

        /// The same with snapshots on: every node finds its cursor belongs to the old stream and restores
        /// (the snapshot was taken in the old stream, so the new one is consumed from its start), and the
        /// rows written to the new stream reach every node.
        @Test func streamRecreatedUnderARunningClusterIsRestoredFromASnapshot() throws {
            let cluster = try TestCluster(schema: Self.schema, extraTOML: Array(repeating: Self.manualSnapshots, count: 3), natsTOML: Self.operatorTOML)
            try cluster.sql(0, (1...10).map { "INSERT INTO kv VALUES (\($0), 'old stream');" }.joined())
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "10\n"))
            try Self.saveSnapshot(cluster, on: 0)
            let connection = try Self.connectAsOperator(cluster)
            let stream = "harmonylite-changes-1"
            try connection.deleteStream(stream)
            try connection.ensureStream(Self.shardStream(stream), updateExisting: false)
            try cluster.sql(1, (11...15).map { "INSERT INTO kv VALUES (\($0), 'new stream');" }.joined())
            // Each node restores in place; one that stopped instead is started again (as systemd would: the
            // nodes' embedded servers are the cluster), so the rest of the test still says what it can, and
            // the test fails.
            var sawReplacement = Array(repeating: false, count: 3)
            var restarted: Set<Int> = []
            let restored = try eventually(timeout: 120) {
                for node in 0..<3 {
                    if cluster.node(node).log.contains("is not the stream this node's cursor") { sawReplacement[node] = true }
                    if !restarted.contains(node) && !cluster.node(node).isRunning {
                        try cluster.start(node)
                        restarted.insert(node)
                    }
                }
                return (0..<3).allSatisfy { cluster.node($0).log.contains("restored the snapshot") }
            }
            #expect(restored, "restarted: \(restarted.sorted())\n\(cluster.problems())")
            #expect(restarted.isEmpty, "nodes that stopped instead of restoring in place: \(restarted.sorted().map { $0 + 1 })\n\(cluster.problems())")
            #expect(sawReplacement == [true, true, true], "\(cluster.problems())")
            for node in 0..<3 { try cluster.node(node).waitUntilReady(timeout: 60) }
            #expect(
                try cluster.converge("SELECT count(*), sum(k) FROM kv;", to: "15|120\n", timeout: 40),
                "\((0..<3).map { (try? cluster.sql($0, "SELECT count(*), sum(k) FROM kv;")) ?? "?" })\n\(cluster.problems())")
            try cluster.sql(0, "INSERT INTO kv VALUES (16, 'after the restore');")
            #expect(try cluster.converge("SELECT count(*), sum(k) FROM kv;", to: "16|136\n", timeout: 30), "\(cluster.problems())")
        }

        /// A stamp for now, as the capture triggers make them.
        static func stampNow() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) << 16 }
    }
}

extension TestCluster {
    /// Stops (SIGSTOP) the applier of a node that does not hold the snapshot lease — a lease holder's own
    /// snapshots would fall behind with it — and returns that node, a node to write on, the lease holder,
    /// and the applier's PID (to SIGCONT). The writer does not hold the lease either: a node stores its
    /// cursor over its own messages lazily (up to a second late), while other nodes' messages move it at
    /// once, so the holder's snapshots cover a burst the writer made promptly. Needs three nodes.
    func stopApplierOfANodeWithoutTheLease() throws -> (victim: Int, writer: Int, holder: Int, applier: Int32) {
        let holders = { self.nodes.indices.filter { self.nodes[$0]?.log.contains("holding the snapshot lease") == true } }
        guard nodes.count >= 3, eventually(timeout: 30, { holders().count == 1 }), let holder = holders().first else {
            throw TestFailure("no single snapshot lease holder: \(holders())")
        }
        let others = nodes.indices.filter { $0 != holder }
        let (victim, writer) = (others[0], others[1])
        guard let applier = node(victim).children()["applier"] else { throw TestFailure("node \(victim + 1) has no applier") }
        kill(applier, SIGSTOP)
        return (victim, writer, holder, applier)
    }
}
