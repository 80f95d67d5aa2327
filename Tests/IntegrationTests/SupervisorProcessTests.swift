import Foundation
import NATSClient
import TestSupport
import Testing

/// Everything that starts real processes runs one test at a time: the machine has two cores, and timing
/// assertions (heartbeats, watchdog) must not compete with each other.
@Suite(.serialized) struct ProcessTests {}

extension ProcessTests {
    @Suite(.serialized) struct Supervisor {
        static let workers = ["broker", "snapshotter", "applier", "capturer"]

        @Test func readyOnlyAfterEveryWorkerThenWatchdogStatusAndCleanStop() throws {
            let node = try NodeUnderTest(watchdogMicroseconds: 2_000_000)
            try node.waitUntilReady()
            let children = node.children()
            #expect(Set(children.keys) == Set(["nats"] + Self.workers))

            // Each child was started only after the previous one was ready, and READY=1 came last.
            let texts = node.notify.all.map(\.text)
            let readyIndex = try #require(texts.firstIndex { $0.hasPrefix("READY=1") })
            let starts = ["nats", "broker", "snapshotter", "applier", "capturer"].map { name in
                texts.firstIndex(of: "STATUS=starting \(name)")
            }
            #expect(starts.allSatisfy { $0 != nil && $0! < readyIndex })
            #expect(starts.compactMap { $0 } == starts.compactMap { $0 }.sorted())
            for worker in Self.workers { #expect(!supervisorLines(node.log, SupervisorMessage.ready, ["child": worker]).isEmpty) }
            #expect(texts[readyIndex].contains("STATUS=ready"))

            // Only the supervisor talks to systemd: no child inherits NOTIFY_SOCKET or WATCHDOG_USEC.
            for (_, pid) in children {
                let environment = String(decoding: FileManager.default.contents(atPath: "/proc/\(pid)/environ") ?? Data(), as: UTF8.self)
                #expect(!environment.contains("NOTIFY_SOCKET=") && !environment.contains("WATCHDOG_USEC="))
            }

            // WATCHDOG=1 every half of WATCHDOG_USEC (1 s), never a gap near the 2 s timeout.
            Thread.sleep(forTimeInterval: 3.5)
            let pings = node.notify.with("WATCHDOG=1").map(\.time)
            #expect(pings.count >= 3)
            let gaps = zip(pings.dropFirst(), pings).map { $0.timeIntervalSince($1) }
            #expect(gaps.allSatisfy { $0 < 1.6 }, "watchdog gaps \(gaps)")

            #expect(node.terminate() == 0)
            #expect(!node.notify.with("STOPPING=1").isEmpty)
            #expect(eventually(timeout: 2) { children.values.allSatisfy { !processExists($0) } }, "no orphan left")
            // Drained in reverse start order.
            let log = node.log
            let stops = ["capturer", "applier", "snapshotter", "broker", "nats"]
                .map { log.range(of: "[supervisor] \(SupervisorMessage.stopped) child=\($0) child_pid=\(children[$0] ?? 0) status=")?.lowerBound }
            #expect(log.contains("\(SupervisorMessage.stopped) child=nats child_pid=\(children["nats"] ?? 0) status=\"exited with status 0\""))
            #expect(stops.allSatisfy { $0 != nil })
            #expect(stops.compactMap { $0 } == stops.compactMap { $0 }.sorted())
        }

        @Test func killedChildrenComeBackAloneAndTheNodeStaysReady() throws {
            let node = try NodeUnderTest(toml: "[workers.nats]\nrestart_backoff_initial = 50\n")
            try node.waitUntilReady()
            for name in Self.workers + ["nats"] {
                let before = node.children()
                let victim = try #require(before[name])
                let readyLines = supervisorLines(node.log, SupervisorMessage.ready, ["child": name]).count
                kill(victim, SIGKILL)
                let replaced = eventually(timeout: 15) {
                    let now = node.children()
                    return now[name] != nil && now[name] != victim && supervisorLines(node.log, SupervisorMessage.ready, ["child": name]).count > readyLines
                }
                #expect(replaced, "\(name) was not replaced; log:\n\(node.log)")
                let after = node.children()
                for (other, pid) in before where other != name {
                    #expect(after[other] == pid, "\(other) was restarted when \(name) was killed")
                }
            }
            #expect(node.isRunning)
            #expect(node.notify.with("STOPPING=1").isEmpty)
            #expect(node.notify.with("READY=1").count == 1, "READY=1 is sent once and stays")
            let brokerKilled = supervisorLines(
                node.log, SupervisorMessage.restarting, ["child": "broker", "note": "peak resident memory", "status": "was killed by signal 9 (SIGKILL)"])
            #expect(!brokerKilled.isEmpty, "\(node.log.suffix(3000))")
            #expect(node.terminate() == 0)
        }

        /// A wedged embedded nats-server (stopped: it answers no probe) is killed once silent for `[workers.nats]
        /// heartbeat_timeout`, its store's free space said, and restarted on the client port the first one got
        /// (`EmbeddedServerMachine`): the workers keep running with their URL.
        @Test func aWedgedNATSServerIsRestartedOnItsClientPort() throws {
            let node = try NodeUnderTest(toml: "[workers.nats]\nheartbeat_timeout = 2000\nrestart_backoff_initial = 50\n")
            try node.waitUntilReady()
            let before = node.children()
            let wedged = try #require(before["nats"])
            let listening = "listening for clients on port "  // the embedded server's ready line
            kill(wedged, SIGSTOP)
            let replaced = eventually(timeout: 20) { node.log.components(separatedBy: listening).count > 2 }
            #expect(replaced, "\(node.log)")
            #expect(!processExists(wedged))
            let ports = node.log.components(separatedBy: listening).dropFirst().map { $0.prefix { $0.isNumber } }
            #expect(ports.count == 2 && ports[0] == ports[1] && !ports[0].isEmpty, "\(ports)")
            #expect(node.log.contains("the embedded nats-server does not answer its liveness probe"), "\(node.log)")
            #expect(
                node.log.contains("free space of the embedded nats-server's JetStream store") && node.log.contains("why=\"killing the embedded nats-server\""),
                "\(node.log)")
            for (name, pid) in before where name != "nats" {
                #expect(node.children()[name] == pid, "\(name) was restarted when nats-server was")
            }
            #expect(node.isRunning)
            #expect(node.terminate() == 0)
        }

        /// A full filesystem under the database (and the JetStream store beside it) is said once, naming what it
        /// holds, and the space coming back once (`EmbeddedServerMachine`, `DiskSpaceWatch`).
        @Test(.enabled(if: geteuid() == 0, "needs root to mount a small tmpfs")) func aFullDiskIsSaidOnceAndItsEndOnce() throws {
            let disk = try FaultDisk(megabytes: 64)
            defer { disk.unmount() }
            let node = try NodeUnderTest(database: disk.path + "/node1.db")
            try node.waitUntilReady()
            let full = "ERR [supervisor] disk full: "
            let holding = "holding=\"the database and the JetStream store\" path=\(disk.path)"
            #expect(!node.log.contains(full), "\(node.log)")
            disk.fill()
            #expect(eventually(timeout: 5) { node.log.contains(full) }, "\(node.log)")
            Thread.sleep(forTimeInterval: 2.5)
            let fullLines = node.log.split(separator: "\n").filter { $0.contains(full) }
            #expect(fullLines.count == 1 && fullLines[0].contains(holding), "said once, naming the place: \(fullLines)")
            disk.free()
            #expect(eventually(timeout: 5) { node.log.contains("INF [supervisor] disk space is back") }, "\(node.log)")
            let back = node.log.split(separator: "\n").filter { $0.contains("disk space is back") }
            #expect(back.count == 1 && back[0].contains(holding), "\(back)")
            #expect(node.isRunning)
            _ = node.terminate()
        }

        @Test func hungWorkerIsReplacedAndTheWatchdogResumes() throws {
            let node = try NodeUnderTest(toml: "[workers.applier]\nheartbeat_timeout = 1500\n", watchdogMicroseconds: 2_000_000)
            try node.waitUntilReady()
            let hung = try #require(node.children()["applier"])
            kill(hung, SIGSTOP)
            let replaced = eventually(timeout: 10) { node.children()["applier"].map { $0 != hung } ?? false }
            #expect(replaced, "log:\n\(node.log)")
            let killed = supervisorLines(node.log, SupervisorMessage.noHeartbeat, ["child": "applier", "child_pid": "\(hung) "])
            #expect(!killed.isEmpty, "\(node.log.suffix(3000))")
            #expect(!processExists(hung))
            let replacedAt = Date()
            Thread.sleep(forTimeInterval: 3)
            #expect(node.notify.with("WATCHDOG=1").filter { $0.time > replacedAt }.count >= 2)
            #expect(node.terminate() == 0)
        }

        @Test func crashLoopPastTheIntensityLimitStopsTheNodeNonZero() throws {
            // 16 MiB of address space is too little for the dynamic loader: a real, repeating crash.
            let node = try NodeUnderTest(
                toml: """
                    [workers.capturer]
                    memory_limit = "16MiB"
                    restart_intensity = 3
                    restart_backoff_initial = 50
                    """)
            let status = node.waitForExit(timeout: 30)
            #expect(status == 1, "log:\n\(node.log)")
            #expect(node.log.contains("memory_limit=\"16 MiB (RLIMIT_AS)"), "\(node.log.suffix(3000))")
            let gaveUp = supervisorLines(node.log, SupervisorMessage.gaveUp, ["child": "capturer", "restart_intensity": "3 ", "restart_period_s": "60 "])
            #expect(gaveUp.count == 1, "\(node.log.suffix(3000))")
            #expect(!node.notify.with("STOPPING=1").isEmpty)
        }

        @Test func limitsAreAppliedByTheKernel() throws {
            let node = try NodeUnderTest(
                toml: """
                    [workers.broker]
                    memory_limit = "2GiB"
                    open_files = 300
                    nice = 7
                    """)
            try node.waitUntilReady()
            let broker = try #require(node.children()["broker"])
            let limits = try String(contentsOfFile: "/proc/\(broker)/limits", encoding: .utf8)
            #expect(limits.contains { _ in true } && limits.range(of: #"Max address space\s+2147483648\s+2147483648"#, options: .regularExpression) != nil)
            #expect(limits.range(of: #"Max open files\s+300\s+300"#, options: .regularExpression) != nil)
            let stat = try String(contentsOfFile: "/proc/\(broker)/stat", encoding: .utf8)
            let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
            #expect(fields[16] == "7", "nice is the 19th field of /proc/pid/stat")
            // Another worker keeps the inherited limits.
            let applier = try #require(node.children()["applier"])
            let applierLimits = try String(contentsOfFile: "/proc/\(applier)/limits", encoding: .utf8)
            #expect(applierLimits.range(of: #"Max address space\s+unlimited"#, options: .regularExpression) != nil)
            #expect(node.terminate() == 0)
        }

        @Test func hangupRestartsWorkersOneAtATimeAndKeepsNATS() throws {
            let node = try NodeUnderTest()
            try node.waitUntilReady()
            let before = node.children()
            kill(node.pid, SIGHUP)
            #expect(node.notify.waitFor("RELOADING=1", timeout: 5))
            #expect(eventually(timeout: 30) { node.notify.with("READY=1").count == 2 }, "log:\n\(node.log)")
            let after = node.children()
            #expect(after["nats"] == before["nats"])
            for worker in Self.workers {
                #expect(after[worker] != nil && after[worker] != before[worker], "\(worker) was not restarted")
            }
            let log = node.log
            let order = Self.workers.map { log.range(of: "[supervisor] \(SupervisorMessage.stoppedForReload) child=\($0)")?.lowerBound }
            #expect(order.allSatisfy { $0 != nil } && order.compactMap { $0 } == order.compactMap { $0 }.sorted())
            #expect(node.terminate() == 0)
        }

        @Test func childrenDieWithAKilledSupervisor() throws {
            let node = try NodeUnderTest()
            try node.waitUntilReady()
            let children = node.children()
            #expect(children.count == 5)
            kill(node.pid, SIGKILL)
            _ = node.waitForExit(timeout: 5)
            #expect(eventually(timeout: 5) { children.values.allSatisfy { !processExists($0) } }, "orphans: \(children)")
        }

        @Test func secondSupervisorForTheSameDatabaseIsRefused() throws {
            let node = try NodeUnderTest()
            try node.waitUntilReady()
            let second = try runCommand(Binaries.supervisor, ["-config", node.configPath])
            #expect(second.status == 1)
            #expect(second.output.contains("another harmonylite process (pid \(node.pid)) is running for \(node.database)"), "\(second.output)")
            #expect(node.terminate() == 0)
        }
    }

    @Suite(.serialized) struct Cluster {
        @Test func threeSupervisorsFormOneJetStreamCluster() throws {
            let clientPorts = try (0..<3).map { _ in try freePort() }
            let routePorts = try (0..<3).map { _ in try freePort() }
            let shared = try TemporaryDirectory()
            var nodes: [NodeUnderTest] = []
            for index in 0..<3 {
                let peers = (0..<3).filter { $0 != index }.map { "nats://127.0.0.1:\(routePorts[$0])/" }.joined(separator: ",")
                nodes.append(
                    try NodeUnderTest(
                        nodeID: index + 1,
                        toml: "[nats]\nbind_address = \"127.0.0.1:\(clientPorts[index])\"\n",
                        arguments: ["-cluster-addr", "127.0.0.1:\(routePorts[index])", "-cluster-peers", peers],
                        directory: shared
                    ))
            }
            defer { nodes.forEach { $0.terminate() } }
            for node in nodes { try node.waitUntilReady(timeout: 60) }

            // Streams are the administrator's to create (the node's own user may not).
            let connection = try NATSConnection.connect(try embeddedAdministratorSettings(directory: shared.path, port: clientPorts[0], name: "test"))
            var summary: StreamSummary?
            // The meta leader may still be settling; creating the stream is retried briefly.
            _ = eventually(timeout: 20, interval: 0.5) {
                summary = try? connection.addStream(name: "r3-check", subjects: ["r3.check"], replicas: 3)
                return summary != nil
            }
            let stream = try #require(summary)
            #expect(stream.replicas == 3)
            #expect(!stream.leader.isEmpty)
            // Every node's JetStream store took part.
            for index in 1...3 {
                #expect(FileManager.default.fileExists(atPath: shared.path + "/nats/harmonylite-node-\(index)/jetstream"))
            }
        }
    }

    @Suite struct CommandLine {
        @Test func configurationErrorsNameTheProblemAndExitNonZero() throws {
            let directory = try TemporaryDirectory()
            let database = directory.path + "/app.db"
            try makeDatabase(database)
            let cases: [(String, String)] = [
                ("db_path = \"\(database)\"\n[snapshot]\nintervall = 10\n", "node.toml:3: unknown key snapshot.intervall (did you mean snapshot.interval?)"),
                ("db_path = \"\(database)\"\n[replication_log]\nshards = \"two\"\n", "node.toml:3: replication_log.shards must be an integer"),
                (
                    "db_path = \"\(directory.path)/nodir/missing.db\"\n",
                    "Database file \(directory.path)/nodir/missing.db does not exist, nor does its directory"
                ),
            ]
            for (toml, message) in cases {
                let config = directory.write("node.toml", toml)
                let result = try runCommand(Binaries.supervisor, ["-config", config])
                #expect(result.status == 2, "\(result.output)")
                #expect(result.output.contains(message), "\(result.output)")
            }
            let missingFile = try runCommand(Binaries.supervisor, ["-config", directory.path + "/absent.toml"])
            #expect(missingFile.status == 2 && missingFile.output.contains("absent.toml: cannot read the configuration file"))
        }

        /// A cluster's file (`replicas = 3`, peers given on the node's command line only) works for the
        /// one-shot commands as written in the guides; only a node started without its peers is refused.
        @Test func oneShotCommandsRunWithAClusterConfigurationWithoutItsPeers() throws {
            let directory = try TemporaryDirectory()
            let database = directory.path + "/app.db"
            try makeDatabase(database)
            let config = directory.write("node.toml", "db_path = \"\(database)\"\nnode_id = 1\n[replication_log]\nreplicas = 3\n")
            for command in ["-status", "-schema-status", "-parked"] {
                let result = try runCommand(Binaries.supervisor, ["-config", config, command])
                #expect(result.status != 2 && !result.output.contains("configuration error"), "\(command): \(result.output)")
            }
            let schema = try runCommand(Binaries.supervisor, ["-config", config, "-schema-status"])
            #expect(schema.status == 0 && schema.output.contains("Local Schema Status"), "\(schema.output)")
            let start = try runCommand(Binaries.supervisor, ["-config", config])
            #expect(start.status == 2 && start.output.contains("replication_log.replicas asks for 3 JetStream replicas"), "\(start.output)")
        }

        @Test func versionNamesEverythingAUserReportsInABug() throws {
            let result = try runCommand(Binaries.supervisor, ["-version"])
            #expect(result.status == 0)
            #expect(
                result.output.range(of: #"^HarmonyLite \d+\.\d+\.\d+ \(git: [^,]+, built: [^,]+, Swift 6[.\d]*, linux/x86_64\)"#, options: .regularExpression)
                    != nil, "\(result.output)")
            let help = try runCommand(Binaries.supervisor, ["-help"])
            for flag in [
                "-config", "-node-id", "-cluster-addr", "-cluster-peers", "-leaf-servers", "-cleanup", "-save-snapshot", "-parked", "-retry-parked",
                "-schema-status", "-schema-status-cluster", "-version",
            ] {
                #expect(help.output.contains(flag), "\(flag) missing from -help")
            }
        }

        @Test func cleanupRemovesOnlyHarmonyLiteObjects() throws {
            let directory = try TemporaryDirectory()
            let database = directory.path + "/app.db"
            try makeDatabase(
                database,
                """
                CREATE TABLE books(id INTEGER PRIMARY KEY, title TEXT);
                CREATE TABLE "__harmonylite__books_change_log"(id INTEGER PRIMARY KEY, type TEXT);
                CREATE TABLE "__harmonylite___change_log_global"(id INTEGER PRIMARY KEY);
                CREATE TABLE "x_harmonylite__keep"(id INTEGER PRIMARY KEY);
                CREATE TRIGGER "__harmonylite__books_change_log_on_insert" AFTER INSERT ON books BEGIN
                  INSERT INTO "__harmonylite__books_change_log"(type) VALUES ('insert'); END;
                INSERT INTO books(title) VALUES ('Dune'), ('Emma');
                """)
            let config = directory.write("node.toml", "db_path = \"\(database)\"\n")
            let result = try runCommand(Binaries.supervisor, ["-config", config, "-cleanup"])
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("removed 1 triggers and 2 tables"))
            let left = try runCommand("/usr/bin/sqlite3", [database, "SELECT group_concat(name) FROM sqlite_master; SELECT count(*) FROM books;"])
            #expect(left.output == "books,x_harmonylite__keep\n2\n")
        }

        /// Rows held aside by UNIQUE settlement are the application's data: `-cleanup` keeps their table and
        /// says so, instead of dropping them with our bookkeeping.
        @Test func cleanupKeepsRowsHeldAside() throws {
            let directory = try TemporaryDirectory()
            let database = directory.path + "/app.db"
            try makeDatabase(
                database,
                """
                CREATE TABLE books(id INTEGER PRIMARY KEY, title TEXT);
                CREATE TABLE "__harmonylite___conflicts"(table_name TEXT NOT NULL, losing_key TEXT NOT NULL, losing_values TEXT NOT NULL,
                  PRIMARY KEY (table_name, losing_key)) WITHOUT ROWID;
                INSERT INTO "__harmonylite___conflicts" VALUES ('books', '7', 'id=7');
                CREATE TABLE "__harmonylite___meta"(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
                """)
            let config = directory.write("node.toml", "db_path = \"\(database)\"\n")
            let result = try runCommand(Binaries.supervisor, ["-config", config, "-cleanup"])
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("kept __harmonylite___conflicts: it holds 1 row(s) held aside"), "\(result.output)")
            let left = try runCommand(
                "/usr/bin/sqlite3", [database, "SELECT group_concat(name) FROM sqlite_master; SELECT losing_values FROM __harmonylite___conflicts;"])
            #expect(left.output == "books,__harmonylite___conflicts\nid=7\n", "\(left.output)")
        }
    }
}
