import Foundation
import TestSupport
import Testing

extension ProcessTests {
    /// One log stream per node in one format: nats-server's lines parsed and re-emitted as the node's own,
    /// nothing printed twice, journald priorities on every line, and a failing server's reason in the
    /// supervisor's line. Real nodes, a real nats-server (Debian's 2.9).
    @Suite(.serialized) struct LogStream {
        /// `format = "json"`: every line of the node's output, nats-server's included, is one JSON object with
        /// the node's fields; the supervisor does not print a worker's line a second time.
        @Test func everyLineIsJSONAndNoneIsPrintedTwice() throws {
            let directory = try TemporaryDirectory()
            try makeDatabase(directory.path + "/node1.db", "PRAGMA journal_mode=WAL; CREATE TABLE kv (k INTEGER PRIMARY KEY, v);")
            let node = try NodeUnderTest(toml: "[logging]\nformat = \"json\"\n", directory: directory)
            try node.waitUntilReady()
            _ = try runCommand("/usr/bin/sqlite3", [node.database, "INSERT INTO kv VALUES (1, 'a');"])
            #expect(node.terminate() == 0)
            let lines = node.log.split(separator: "\n", omittingEmptySubsequences: true)
            #expect(lines.count > 20, "\(node.log)")
            var objects: [[String: Any]] = []
            for line in lines {
                guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                    Issue.record("not JSON: \(line)")
                    continue
                }
                #expect(object["node_id"] as? Int == 1 && object["pid"] is Int && object["message"] is String && object["level"] is String, "\(line)")
                let time = object["time"] as? String ?? ""
                #expect(time.count == 24 && time.hasSuffix("Z") && time.dropFirst(10).hasPrefix("T"), "RFC 3339 UTC: \(line)")
                objects.append(object)
            }
            let server = objects.filter { $0["process"] as? String == "nats-server" }
            #expect(server.contains { ($0["message"] as? String) == "Starting nats-server" && $0["level"] as? String == "info" }, "\(node.log)")
            #expect(server.allSatisfy { ($0["message"] as? String).map { !$0.hasPrefix("[") } ?? false }, "the server's own prefix is parsed away")
            // No worker line said again by the supervisor as "<worker>: <text>".
            let supervisorMessages = Set(objects.filter { $0["process"] as? String == "supervisor" }.compactMap { $0["message"] as? String })
            for object in objects {
                guard let process = object["process"] as? String, process != "supervisor", process != "nats-server",
                    let message = object["message"] as? String
                else { continue }
                #expect(!supervisorMessages.contains("\(process): \(message)"), "printed twice: \(message)")
            }
            // The applier says its cursor as stream=seq, never as a Swift dictionary.
            #expect(!node.log.contains("(key: "), "\(node.log)")
        }

        /// A worker's crash report (the Swift runtime's backtrace on SIGSEGV) does not break the stream:
        /// under `format = "json"` each of its lines is re-emitted as an object of that worker at level error.
        @Test func aWorkersCrashReportIsJSONToo() throws {
            let directory = try TemporaryDirectory()
            let node = try NodeUnderTest(toml: "[logging]\nformat = \"json\"\n", directory: directory)
            try node.waitUntilReady()
            let capturer = try #require(node.pid(of: .capturer))
            kill(capturer, SIGSEGV)
            #expect(eventually(timeout: 60) { node.log.contains("Backtrac") }, "\(node.log.suffix(3000))")
            Thread.sleep(forTimeInterval: 2)  // the rest of the report
            #expect(node.terminate() == 0)
            var crashLines = 0
            for line in node.log.split(separator: "\n", omittingEmptySubsequences: true) {
                guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                    Issue.record("not JSON: \(line)")
                    continue
                }
                if object["process"] as? String == "capturer", (object["message"] as? String)?.contains("Backtrac") == true {
                    #expect(object["level"] as? String == "error" && object["pid"] as? Int == Int(capturer), "\(line)")
                    crashLines += 1
                }
            }
            #expect(crashLines >= 1, "\(node.log.suffix(3000))")
        }

        /// A worker that dies of a signal after writing past its logger: the supervisor's exit line is still
        /// one JSON object and says what the worker wrote (its crash report's reason line).
        @Test func aDeadWorkersLastWordsAreInTheExitLine() throws {
            let node = try NodeUnderTest(toml: "[logging]\nformat = \"json\"\n")
            try node.waitUntilReady()
            let capturer = try #require(node.pid(of: .capturer))
            // A signal sent from outside: the runtime's backtracer reports and returns; then the worker dies.
            kill(capturer, SIGABRT)
            #expect(eventually(timeout: 60) { node.log.contains("Backtrace took") }, "\(node.log.suffix(3000))")
            kill(capturer, SIGKILL)
            // JSON: the report's fields are keys of their own.
            let killed = { (line: Substring) in line.contains(#""child":"capturer""#) && line.contains(#""status":"was killed by signal 9"#) }
            #expect(eventually(timeout: 30) { node.log.split(separator: "\n").contains(where: killed) }, "\(node.log.suffix(3000))")
            try node.waitUntilReady()
            #expect(node.terminate() == 0)
            let exit = try #require(node.log.split(separator: "\n").first(where: killed))
            let object = try #require((try? JSONSerialization.jsonObject(with: Data(exit.utf8))) as? [String: Any], "\(exit)")
            #expect(object["message"] as? String == SupervisorMessage.restarting, "\(exit)")
            #expect((object["note"] as? String)?.contains("it wrote: *** Program crashed") == true, "\(exit)\n\(node.log.suffix(3000))")
        }

        /// Under journald every line, nats-server's too, starts with its syslog priority and carries no time
        /// stamp of ours (journald stamps each entry itself).
        @Test func underJournaldEveryLineHasItsPriorityAndNoTimestamp() throws {
            let node = try NodeUnderTest(logToJournal: true)
            try node.waitUntilReady()
            // A worker's crash report gets a priority too (error), as that worker's lines.
            kill(try #require(node.pid(of: .capturer)), SIGSEGV)
            #expect(eventually(timeout: 60) { node.log.contains("Backtrace took") }, "\(node.log.suffix(3000))")
            #expect(node.terminate() == 0)
            #expect(node.log.contains("<3>ERR [capturer] *** Signal 11"), "\(node.log.suffix(3000))")
            let lines = node.log.split(separator: "\n", omittingEmptySubsequences: true)
            let shape = try Regex("^<[0-7]>(TRC|DBG|INF|WRN|ERR|CRT) \\[[a-z-]+\\] ")
            let wrapped = try Regex("^<[0-7]>[A-Z]{3} \\[[a-z-]+\\] <[0-7]>")
            for line in lines {
                #expect(line.firstMatch(of: shape) != nil, "\(line)")
                #expect(line.firstMatch(of: wrapped) == nil, "a worker's own line passes through, not wrapped: \(line)")
            }
            #expect(lines.contains { $0.hasPrefix("<6>INF [capturer] ") }, "workers keep their priorities through the pipe: \(node.log)")
            #expect(lines.contains { $0.hasPrefix("<6>INF [nats-server] Starting nats-server") }, "\(node.log)")
        }

        /// nats-server cannot listen (its port is taken): every exit the supervisor reports names the cause
        /// nats-server gave in its [FTL] line, and the node stops with status 2 (a configuration error) at the
        /// third failure in a row, naming the process that holds the port.
        @Test func aPortConflictIsNamedInTheSupervisorsLine() throws {
            let port = try freePort()
            let holder = try ServerUnderTest("/usr/sbin/nats-server", ["-a", "127.0.0.1", "-p", "\(port)"], log: try TemporaryDirectory().path + "/holder.log")
            defer { holder.stop() }
            #expect(holder.waitForTCP(port: port))
            let node = try NodeUnderTest(
                toml: "[nats]\nbind_address = \"127.0.0.1:\(port)\"\n[workers.nats]\nrestart_intensity = 2\nrestart_backoff_initial = 100\n")
            #expect(node.waitForExit(timeout: 30) == 2, "\(node.log)")
            let exits =
                supervisorLines(node.log, SupervisorMessage.ended, ["child": "nats", "status": "exited with status 1"])
                + supervisorLines(node.log, "child cannot start with this configuration", ["child": "nats", "status": "exited with status 1"])
            #expect(exits.count == 3, "\(node.log)")
            for line in exits {
                #expect(line.contains("nats-server said: Error listening on port: 127.0.0.1:\(port)") && line.contains("address already in use"), "\(line)")
            }
            #expect(exits.last?.contains("(nats-server, pid ") == true, "the holder is named: \(exits.last ?? "")")
            #expect(node.log.contains("CRT [nats-server] Error listening on port"), "\(node.log)")
        }

        /// `-save-snapshot` says what it does while it does it, in binary units: the copy's end and size,
        /// the upload's progress, and its summary (before: silent during the copy, "0.0 MB" for small ones).
        @Test func saveSnapshotSaysItsProgressInMiB() throws {
            let directory = try TemporaryDirectory()
            try makeDatabase(
                directory.path + "/node1.db",
                "PRAGMA journal_mode=WAL; CREATE TABLE blobs(id INTEGER PRIMARY KEY, body BLOB);"
                    + "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) INSERT INTO blobs SELECT i, randomblob(4000) FROM n;")
            let node = try NodeUnderTest(directory: directory)
            try node.waitUntilReady()
            let saved = try runCommand(Binaries.supervisor, ["-config", node.configPath, "-save-snapshot"])
            #expect(saved.status == 0, "\(saved.output)")
            let lines = saved.output.split(separator: "\n")
            #expect(lines.contains { $0.contains("copied the database: a snapshot to upload ") && $0.contains(#" size="11."#) }, "\(saved.output)")
            #expect(
                lines.contains {
                    $0.contains("uploading the snapshot ") && $0.contains(" percent=100 ") && $0.contains(#" rate=""#) && $0.contains(#" total="11."#)
                },
                "\(saved.output)")
            #expect(
                lines.contains { $0.contains("saved a snapshot of") && $0.contains(" MiB, copy ") && $0.contains(", cursor ") && !$0.contains("(key:") },
                "\(saved.output)")
            #expect(!saved.output.contains(" MB"), "\(saved.output)")
            #expect(node.terminate() == 0)
        }
    }
}
