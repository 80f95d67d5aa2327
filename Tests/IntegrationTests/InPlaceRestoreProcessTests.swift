import Foundation
import TestSupport
import Testing

extension ProcessTests {
    /// Restores happen in place, and only where nothing uses the database's cursor; one lock per database.
    @Suite(.serialized) struct InPlaceRestore {
        typealias Recovery = SnapshotRecovery

        /// Every change this node queued has been published (JetStream acknowledged it).
        static func allPublished(_ node: NodeUnderTest) throws -> Bool {
            let answer = try runCommand(
                "/usr/bin/sqlite3",
                [
                    node.database,
                    "SELECT coalesce((SELECT value FROM __harmonylite___meta WHERE key = 'published_through'), 0)"
                        + " >= (SELECT coalesce(max(id), 0) FROM __harmonylite___change_log_global);",
                ])
            return answer.output == "1\n"
        }

        /// A running node whose applier falls more than `max_entries` behind (here: stopped with SIGSTOP)
        /// meets the gap when it resumes: it never applies past it; the supervisor restores a snapshot in
        /// place (snapshotter, applier and capturer stop, the snapshotter restores, they start again)
        /// without stopping: same supervisor, nats-server and broker, READY=1 sent once, STATUS= saying
        /// "restoring" meanwhile, and the node converges.
        @Test func runningNodeThatFallsBehindRestoresInPlace() throws {
            let toml = Recovery.frequentSnapshots + "[replication_log]\nmax_entries = 20\n"
            let cluster = try TestCluster(schema: Recovery.schema, extraTOML: Array(repeating: toml, count: 3))
            try cluster.sql(0, "INSERT INTO kv VALUES (0, 'before');")
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "1\n", timeout: 30))
            // The victim does not save the snapshots (its own database is what falls behind), nor the writer.
            let (victim, writer, _, applier) = try cluster.stopApplierOfANodeWithoutTheLease()
            let node = cluster.node(victim)
            let before = node.children()
            for k in 1...60 {
                try cluster.sql(writer, "INSERT INTO kv VALUES (\(k), 'row \(k)');")
            }
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "61\n", on: [0, 1, 2].filter { $0 != victim }, timeout: 30))
            // Snapshots newer than the burst exist before the applier resumes, so the restore has one that
            // covers what the streams dropped (the lease holder saves every half max_entries messages; a
            // restore that finds no covering snapshot moves past the gap loudly, which is not this test).
            #expect(Recovery.waitForFreshSnapshots(cluster, count: 3), "\(Recovery.snapshotLines(cluster))")
            kill(applier, SIGCONT)

            #expect(eventually(timeout: 60, interval: 0.2) { node.log.contains("snapshot restore in place complete") }, "\(node.log.suffix(4000))")
            let log = node.log
            #expect(log.contains("are gone from the stream before this node applied them"), "\(log.suffix(3000))")
            #expect(log.contains("restoring a snapshot in place"), "\(log.suffix(3000))")
            #expect(log.contains("looking for a snapshot to restore reason=\"the supervisor asked for one"), "\(log.suffix(3000))")
            #expect(log.contains("restored the snapshot"), "\(log.suffix(3000))")
            #expect(!log.contains("missing on this node"), "the restore had to accept a gap:\n\(log.suffix(3000))")
            #expect(node.isRunning, "the supervisor stopped:\n\(log.suffix(3000))")
            let after = node.children()
            #expect(after["nats"] == before["nats"] && after["broker"] == before["broker"], "nats-server and the broker were restarted: \(before) → \(after)")
            #expect(after["applier"] != before["applier"] && after["snapshotter"] != before["snapshotter"] && after["capturer"] != before["capturer"])
            #expect(node.notify.with("READY=1").count == 1, "\(node.notify.all.map(\.text))")
            #expect(node.notify.with("STOPPING=1").isEmpty, "\(node.notify.all.map(\.text))")
            #expect(node.notify.all.contains { $0.text.contains("STATUS=restoring") }, "\(node.notify.all.map(\.text))")
            // The notification travels on its own socket: it may reach the listener after the log line.
            #expect(eventually(timeout: 10) { node.notify.all.last?.text.contains("STATUS=ready") == true }, "\(node.notify.all.map(\.text))")
            #expect(try cluster.converge("SELECT count(*), sum(k) FROM kv;", to: "61|1830\n", timeout: 40), "\(node.log.suffix(3000))")
            // It replicates both ways afterwards.
            try cluster.sql(victim, "INSERT INTO kv VALUES (100, 'after the restore');")
            #expect(try cluster.converge("SELECT count(*), sum(k) FROM kv;", to: "62|1930\n", timeout: 40), "\(cluster.problems())")
        }

        /// A snapshotter that restarts while the applier and the capturer run (here: killed) does not
        /// restore, even when the node's state would call for one (its seq map is gone): a restore under
        /// them would lose what this node published after the snapshot, and the applier would write its
        /// cursor over the restored one. Before: it restored, and the row written after the snapshot was
        /// gone from this node.
        @Test func snapshotterRestartNeverRestoresUnderRunningWorkers() throws {
            let node = try NodeUnderTest(nodeID: 5)
            try node.waitUntilReady()
            #expect(try runCommand("/usr/bin/sqlite3", [node.database, "INSERT INTO books VALUES (1, 'Solaris');"]).status == 0)
            let saved = try runCommand(Binaries.supervisor, ["-config", node.configPath, "-save-snapshot"])
            #expect(saved.status == 0, "\(saved.output)")
            #expect(try runCommand("/usr/bin/sqlite3", [node.database, "INSERT INTO books VALUES (2, 'Ubik');"]).status == 0)
            #expect(try eventually(timeout: 30) { try Self.allPublished(node) }, "\(node.log.suffix(3000))")
            try FileManager.default.removeItem(atPath: node.directory.path + "/node5-seq-map.cbor")
            let before = node.children()
            let snapshotter = try #require(before["snapshotter"])
            let logBefore = node.log.count
            kill(snapshotter, SIGKILL)
            // What the restarted snapshotter did: it is ready (its "ready" line), restored or not.
            let restarted = { String(node.log.dropFirst(logBefore)) }
            let ready = { !supervisorLines(restarted(), SupervisorMessage.ready, ["child": "snapshotter"]).isEmpty }
            #expect(eventually(timeout: 30, interval: 0.1) { ready() }, "\(node.log.suffix(3000))")
            let log = restarted()
            #expect(log.contains("no restore at this start"), "\(log.suffix(3000))")
            #expect(log.contains("the applier or the capturer is running"), "\(log.suffix(3000))")
            #expect(!log.contains("restored the snapshot") && !log.contains("looking for a snapshot to restore"), "\(log.suffix(3000))")
            #expect(try runCommand("/usr/bin/sqlite3", [node.database, "SELECT group_concat(id) FROM books;"]).output == "1,2\n")
            let after = node.children()
            #expect(after["applier"] == before["applier"] && after["capturer"] == before["capturer"])
            #expect(after["snapshotter"] != nil && after["snapshotter"] != snapshotter)
            #expect(node.terminate() == 0)
        }

        /// The node lock lives next to the database whatever the environment: a node started by systemd
        /// (its run directory in RUNTIME_DIRECTORY) refuses a second supervisor and `-cleanup` started from a
        /// shell (no RUNTIME_DIRECTORY), naming the lock file and the holder's pid, and `-save-snapshot` from
        /// the shell reaches its embedded server. Before: both used the lock in their own run directory, so
        /// neither was refused, and `-save-snapshot` found no running node.
        @Test func oneLockPerDatabaseWhateverTheEnvironment() throws {
            let directory = try TemporaryDirectory()
            let runtimeDirectory = directory.path + "/run"
            let node = try NodeUnderTest(directory: directory, environment: ["RUNTIME_DIRECTORY": runtimeDirectory])
            try node.waitUntilReady()
            #expect(FileManager.default.fileExists(atPath: runtimeDirectory + "/control.sock"), "the run directory stays in RUNTIME_DIRECTORY")
            let lock = directory.path + "/.node1.db.harmonylite.lock"
            let expected = "another harmonylite process (pid \(node.pid)) is running for \(node.database): it holds the lock \(lock)"
            let cleanup = try runCommand(Binaries.supervisor, ["-config", node.configPath, "-cleanup"])
            #expect(cleanup.status == 1 && cleanup.output.contains(expected), "\(cleanup.output)")
            let second = try runCommand(Binaries.supervisor, ["-config", node.configPath])
            #expect(second.status == 1 && second.output.contains(expected), "\(second.output)")
            #expect(
                try runCommand("/usr/bin/sqlite3", [node.database, "SELECT count(*) FROM sqlite_master WHERE substr(name, 1, 13) = '__harmonylite';"]).output
                    != "0\n",
                "the refused -cleanup removed nothing")
            // A command from the shell finds the node's embedded server through the run directory the node
            // recorded in its lock.
            let saved = try runCommand(Binaries.supervisor, ["-config", node.configPath, "-save-snapshot"])
            #expect(saved.status == 0 && saved.output.contains("saved a snapshot of \(node.database)"), "\(saved.output)")
            #expect(node.terminate() == 0)
            let afterStop = try runCommand(Binaries.supervisor, ["-config", node.configPath, "-cleanup"])
            #expect(afterStop.status == 0, "\(afterStop.output)")
        }
    }
}
