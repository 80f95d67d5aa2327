import ChangeLog
import Foundation
import HarmonyConfig
import TestSupport
import Testing

extension ProcessTests {
    /// What the application does to its database never stops a node: a transaction that holds the write lock
    /// for longer than any heartbeat timeout, a key SQLite accepts that can be NULL, a write and a key rename
    /// in one script, a table dropped and created again. Real nodes, the sqlite3 shell as the application.
    @Suite(.serialized) struct Liveness {
        /// The default `[workers.*] heartbeat_timeout`, in seconds: what a worker that waited on the lock
        /// without heartbeats was killed after.
        static let heartbeatTimeout = Double(WorkerSettings().heartbeatTimeout) / 1000

        /// `harmonylite -status -json` of `node`, decoded.
        static func status(_ node: NodeUnderTest) -> [String: Any]? {
            guard let result = try? runCommand(Binaries.supervisor, ["-config", node.configPath, "-status", "-json"]), result.status == 0 else { return nil }
            return (try? JSONSerialization.jsonObject(with: Data(result.output.utf8))) as? [String: Any]
        }

        static func workers(_ node: NodeUnderTest) -> [[String: Any]] {
            status(node)?["workers"] as? [[String: Any]] ?? []
        }

        /// The workers' restarts and states, for the assertions and their messages.
        static func restarts(_ node: NodeUnderTest) -> [String: Int] {
            Dictionary(uniqueKeysWithValues: workers(node).map { ($0["name"] as? String ?? "?", $0["restarts"] as? Int ?? -1) })
        }

        static func parked(_ cluster: TestCluster, _ index: Int) throws -> String {
            try cluster.sql(index, "SELECT count(*) FROM \"\(ChangeLogSchema.parked)\";")
        }

        /// The application holds the write lock on node 1 (`BEGIN IMMEDIATE; INSERT …;`, then nothing) for
        /// longer than six heartbeat timeouts while node 2 writes: node 1's workers wait, keep their
        /// heartbeats, say what they wait for (in `-status`, `/health` and the log), are never restarted;
        /// after COMMIT both rows replicate by themselves. (Before: the capturer and the applier waited on
        /// their loop threads, were killed as silent five times each, and the supervisor stopped the node.)
        @Test func applicationHoldingTheWriteLockOnlyDelaysReplication() throws {
            let health = try freePort()
            let cluster = try TestCluster(
                size: 2, schema: "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT);",
                extraTOML: [
                    "[health_check]\nenable = true\nbind = \"127.0.0.1:\(health)\"\npath = \"/health\"\ndetailed = true\n", "",
                ])
            let held = max(35, Self.heartbeatTimeout * 6)
            let holder = try HeldTransaction(path: cluster.path(0), statements: "BEGIN IMMEDIATE; INSERT INTO kv VALUES ('held', 'during the lock');")
            defer { holder.finish() }
            let began = Date()
            // Node 1's applier needs the write lock for node 2's row.
            try cluster.sql(1, "INSERT INTO kv VALUES ('from2', 'while node 1 was locked');")

            var sawStatus = false, sawHealth = false, sawText = false
            while Date().timeIntervalSince(began) < held {
                if let applier = Self.workers(cluster.node(0)).first(where: { $0["name"] as? String == "applier" }),
                    let waiting = applier["waiting_for"] as? String, waiting.hasPrefix("waiting for the database write lock for ")
                {
                    sawStatus = true
                }
                if !sawText, let text = try? runCommand(Binaries.supervisor, ["-config", cluster.node(0).configPath, "-status"]),
                    text.output.contains("applier: waiting for the database write lock for ")
                {
                    sawText = true
                }
                if !sawHealth, let answer = try? ProcessTests.Operability.get("http://127.0.0.1:\(health)/health"),
                    ProcessTests.Operability.body(answer.text).contains("applier is waiting for the database write lock for ")
                {
                    sawHealth = answer.status == 200
                }
                Thread.sleep(forTimeInterval: 1)
            }
            #expect(holder.isRunning, "the holding sqlite3 ended early: \(holder.output)")
            // Nothing of the held transaction left node 1 yet.
            #expect(try cluster.sql(1, "SELECT count(*) FROM kv WHERE k = 'held';") == "0\n")
            try holder.commit()
            #expect(
                try cluster.converge("SELECT k, v FROM kv ORDER BY k;", to: "from2|while node 1 was locked\nheld|during the lock\n", timeout: 60),
                "\(cluster.logs())")
            #expect(sawStatus, "-status -json never said the applier waits for the write lock")
            #expect(sawText, "-status never said the applier waits for the write lock")
            #expect(sawHealth, "/health (200) never said the applier waits for the write lock")
            #expect(cluster.node(0).log.contains("waiting for the database write lock"))
            let restarts = Self.restarts(cluster.node(0))
            #expect(!restarts.isEmpty && restarts.values.allSatisfy { $0 == 0 }, "\(restarts)\n\(cluster.problems())")
            // The wait is over at the next heartbeat.
            #expect(
                eventually(timeout: 10) {
                    let workers = Self.workers(cluster.node(0))
                    return !workers.isEmpty && workers.allSatisfy { $0["state"] as? String == "running" && $0["waiting_for"] == nil }
                }, "\(Self.workers(cluster.node(0)))")
        }

        /// A node asked to stop while its workers wait for a write lock the application holds stops promptly
        /// (the wait ends at the stop; the last cursor and watermark stores wait 3 s at most), and starts again
        /// and catches up once the lock is released.
        @Test func aNodeWaitingForTheWriteLockStopsPromptly() throws {
            let cluster = try TestCluster(size: 2, schema: "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT);")
            let holder = try HeldTransaction(path: cluster.path(0), statements: "BEGIN IMMEDIATE; INSERT INTO kv VALUES ('held', '1');")
            defer { holder.finish() }
            try cluster.sql(1, "INSERT INTO kv VALUES ('from2', '2');")
            #expect(
                eventually(timeout: 30, interval: 0.5) {
                    Self.workers(cluster.node(0)).contains { $0["waiting_for"] != nil }
                }, "\(cluster.problems())")
            let began = Date()
            #expect(cluster.node(0).terminate(timeout: 20) != nil, "not stopped within 20 s:\n\(cluster.node(0).log.suffix(3000))")
            #expect(Date().timeIntervalSince(began) < 20)
            cluster.stop(0)
            try holder.commit()
            try cluster.start(0)
            try cluster.node(0).waitUntilReady(timeout: 60)
            #expect(try cluster.converge("SELECT k, v FROM kv ORDER BY k;", to: "from2|2\nheld|1\n", timeout: 40), "\(cluster.logs())")
        }

        /// `INTEGER PRIMARY KEY DESC` is no rowid alias: its key can be NULL. The application's NULL-key
        /// insert succeeds, that row stays local (a NULL names no row on another node), and nothing wedges:
        /// node 1's other rows leave, node 2's rows apply, nothing is parked, no worker restarts. (Before:
        /// the NULL key was queued, every watermark and cursor store failed on `NOT NULL constraint failed`
        /// and every message node 1 received was parked.)
        @Test func nullKeyOfIntegerPrimaryKeyDescNeverWedgesTheNode() throws {
            let cluster = try TestCluster(
                size: 2,
                schema: """
                    CREATE TABLE d (id INTEGER PRIMARY KEY DESC, v TEXT);
                    CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT);
                    """)
            try cluster.sql(0, "INSERT INTO d VALUES (NULL, 'no key'); INSERT INTO d VALUES (7, 'seven');")
            #expect(try cluster.sql(0, "SELECT count(*) FROM d WHERE id IS NULL;") == "1\n")
            try cluster.sql(1, "INSERT INTO kv VALUES ('a', 'from 2'); INSERT INTO d VALUES (8, 'eight');")
            #expect(try cluster.converge("SELECT id, v FROM d WHERE id IS NOT NULL ORDER BY id;", to: "7|seven\n8|eight\n", timeout: 40), "\(cluster.logs())")
            #expect(try cluster.converge("SELECT k, v FROM kv;", to: "a|from 2\n"), "\(cluster.logs())")
            // Later writes flow both ways too.
            try cluster.sql(0, "INSERT INTO kv VALUES ('b', 'from 1'); UPDATE d SET v = 'still no key' WHERE id IS NULL;")
            try cluster.sql(1, "INSERT INTO kv VALUES ('c', 'from 2 again');")
            #expect(try cluster.converge("SELECT k FROM kv ORDER BY k;", to: "a\nb\nc\n"), "\(cluster.logs())")
            #expect(try cluster.sql(1, "SELECT count(*) FROM d WHERE id IS NULL;") == "0\n")
            #expect(try Self.parked(cluster, 0) == "0\n", "\(cluster.problems())")
            #expect(try Self.parked(cluster, 1) == "0\n", "\(cluster.problems())")
            for index in 0..<2 {
                let restarts = Self.restarts(cluster.node(index))
                #expect(!restarts.isEmpty && restarts.values.allSatisfy { $0 == 0 }, "node \(index + 1): \(restarts)\n\(cluster.problems())")
            }
        }

        /// `INSERT …; ALTER TABLE kv RENAME COLUMN key TO kk;` in one sqlite3 call on node 1, then the same
        /// rename on node 2: node 1 goes on, the row replicates (under whichever key name node 1 read it: a
        /// message node 2 cannot apply before its own rename waits parked and is retried at its schema change),
        /// later writes flow both ways, and node 1 starts again cleanly. (Before: the pending entry was stamped into the row-clock table by the new key name before
        /// that table was rebuilt: `no column named kk` at every start of the capturer, the applier could not
        /// store its cursor, and the supervisor stopped the node after five restarts.)
        @Test func writeAndKeyRenameInOneScript() throws {
            let cluster = try TestCluster(size: 2, schema: "CREATE TABLE kv (key TEXT PRIMARY KEY, v TEXT);")
            try cluster.sql(0, "INSERT INTO kv VALUES ('a', '1');")
            #expect(try cluster.converge("SELECT * FROM kv;", to: "a|1\n"), "\(cluster.logs())")
            try cluster.sql(0, "INSERT INTO kv VALUES ('b', '2'); ALTER TABLE kv RENAME COLUMN key TO kk;")
            Thread.sleep(forTimeInterval: 3)
            try cluster.sql(1, "ALTER TABLE kv RENAME COLUMN key TO kk;")
            #expect(try cluster.converge("SELECT kk, v FROM kv ORDER BY kk;", to: "a|1\nb|2\n", timeout: 40), "\(cluster.logs())")
            try cluster.sql(0, "INSERT INTO kv VALUES ('c', '3');")
            try cluster.sql(1, "INSERT INTO kv VALUES ('d', '4');")
            #expect(try cluster.converge("SELECT kk, v FROM kv ORDER BY kk;", to: "a|1\nb|2\nc|3\nd|4\n", timeout: 40), "\(cluster.logs())")
            let restarts = Self.restarts(cluster.node(0))
            #expect(!restarts.isEmpty && restarts.values.allSatisfy { $0 == 0 }, "\(restarts)\n\(cluster.problems())")
            // And it starts again on what it wrote.
            cluster.stop(0)
            try cluster.start(0)
            try cluster.node(0).waitUntilReady(timeout: 60)
            try cluster.sql(1, "INSERT INTO kv VALUES ('e', '5');")
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "5\n", timeout: 40), "\(cluster.logs())")
        }

        /// A database the installation cannot apply to at start (here HarmonyLite's queue name is taken by a
        /// view): the database is left exactly as it was, the worker's error names the database, the cause,
        /// that nothing was changed and what to do, and the node stops past its restart limit instead of
        /// looping. (Before: `cannot start: SQLite error 1: …` with neither.)
        @Test func installationThatCannotApplyLeavesTheDatabaseAndSaysWhatToDo() throws {
            let directory = try TemporaryDirectory()
            let database = directory.path + "/node1.db"
            try makeDatabase(
                database,
                """
                PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'kept');
                CREATE VIEW __harmonylite___change_log_global AS SELECT 1 AS id, 1 AS table_id;
                """)
            let schema = try runCommand("/usr/bin/sqlite3", [database, "SELECT type, name, sql FROM sqlite_schema ORDER BY name;"]).output
            let node = try NodeUnderTest(
                toml: "[workers.applier]\nrestart_intensity = 1\nrestart_backoff_initial = 50\n", directory: directory, database: database)
            #expect(node.waitForExit(timeout: 60) == 1, "\(node.log)")
            #expect(node.log.contains("cannot install the change log in \(database): "), "\(node.log)")
            #expect(node.log.contains("the database was left as it was. To go on: "), "\(node.log)")
            #expect(node.log.contains("-cleanup"), "\(node.log)")
            // The supervisor's own line, before it stops the node, says it too.
            #expect(
                node.log.split(separator: "\n").contains {
                    $0.contains("[supervisor]") && $0.contains("exited with status 1") && $0.contains("cannot install the change log in")
                }, "\(node.log)")
            #expect(try runCommand("/usr/bin/sqlite3", [database, "SELECT type, name, sql FROM sqlite_schema ORDER BY name;"]).output == schema)
            #expect(try runCommand("/usr/bin/sqlite3", [database, "SELECT * FROM t;"]).output == "1|kept\n")
        }

        /// `DROP TABLE t; CREATE TABLE t (…same key…); INSERT …` in one script while node 1 runs: the new
        /// table's rows are published although the old table's row clocks survive the drop. (Before:
        /// `captureExistingRows` skipped every key that had a clock, so a new row under an old key never left.)
        @Test func droppedAndCreatedTableIsCapturedAgain() throws {
            let cluster = try TestCluster(size: 2, schema: "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
            try cluster.sql(0, "INSERT INTO t VALUES (1, 'old'), (2, 'old');")
            #expect(try cluster.converge("SELECT id, v FROM t ORDER BY id;", to: "1|old\n2|old\n"), "\(cluster.logs())")
            // Node 2 migrates first (DDL is not replicated: node 1's new rows arriving before its DROP would go
            // with its old table).
            try cluster.sql(1, "DROP TABLE t; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
            Thread.sleep(forTimeInterval: 2)
            try cluster.sql(0, "DROP TABLE t; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'new'), (3, 'new');")
            #expect(try cluster.converge("SELECT id, v FROM t ORDER BY id;", to: "1|new\n3|new\n", timeout: 40), "\(cluster.logs())")
        }
    }
}

/// An application transaction held open in a sqlite3 shell: the statements are sent, then nothing until
/// `commit` (the shell waits on its input with the transaction and its write lock held).
final class HeldTransaction {
    private let process = Process()
    private let input = Pipe()
    private let outputFile: String

    init(path: String, statements: String) throws {
        outputFile = path + ".held-\(UUID().uuidString).out"
        FileManager.default.createFile(atPath: outputFile, contents: nil)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        process.arguments = ["-bail", "-cmd", ".timeout 10000", path]
        process.standardInput = input
        let output = FileHandle(forWritingAtPath: outputFile)
        process.standardOutput = output
        process.standardError = output
        try process.run()
        try send("PRAGMA trusted_schema=OFF;\n" + statements + "\nSELECT 'holding';\n")
        guard eventually(timeout: 15, { self.output.contains("holding") }) else {
            throw TestFailure("sqlite3 did not take the write lock: \(self.output)")
        }
    }

    var isRunning: Bool { process.isRunning }
    var output: String { (try? String(contentsOfFile: outputFile, encoding: .utf8)) ?? "" }

    private func send(_ text: String) throws {
        try input.fileHandleForWriting.write(contentsOf: Data(text.utf8))
    }

    /// COMMIT, then the shell ends.
    func commit() throws {
        try send("COMMIT;\n")
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("the held transaction did not commit: \(output)") }
    }

    /// The shell ends (rolling back what was not committed) whatever happened.
    func finish() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(atPath: outputFile)
    }
}
