import Foundation
import TestSupport
import Testing

extension ProcessTests {
    /// /metrics, /health, -status, JSON logs and sleep_timeout through the real binaries, and the files in
    /// deploy/monitoring against a real Prometheus (Debian's package) started on loopback.
    @Suite(.serialized) struct Operability {
        static let schema = "CREATE TABLE kv (k INTEGER PRIMARY KEY, v);"
        static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

        /// `[prometheus]` and `[health_check]` on free loopback ports.
        struct Endpoints {
            let metrics: Int
            let health: Int
            let subsystem: String

            init(subsystem: String = "") throws {
                metrics = try freePort()
                health = try freePort()
                self.subsystem = subsystem
            }

            var toml: String {
                "[prometheus]\nenable = true\nbind = \"127.0.0.1:\(metrics)\"\nnamespace = \"harmonylite\"\nsubsystem = \"\(subsystem)\"\n"
                    + "[health_check]\nenable = true\nbind = \"127.0.0.1:\(health)\"\npath = \"/health\"\n"
            }
        }

        /// `curl -s -i URL`: (status, headers and body).
        static func get(_ url: String) throws -> (status: Int, text: String) {
            let result = try runCommand("/usr/bin/curl", ["-s", "-i", "--max-time", "5", url])
            guard result.status == 0, let line = result.output.split(separator: "\r\n").first, line.split(separator: " ").count >= 2,
                let status = Int(line.split(separator: " ")[1])
            else { return (0, result.output) }
            return (status, result.output)
        }

        static func body(_ text: String) -> String {
            guard let range = text.range(of: "\r\n\r\n") else { return "" }
            return String(text[range.upperBound...])
        }

        /// The value of the first series of `name` whose labels contain every `labels` pair.
        static func metric(_ port: Int, _ name: String, _ labels: [String] = []) -> Double? {
            guard let (status, text) = try? get("http://127.0.0.1:\(port)/metrics"), status == 200 else { return nil }
            for line in body(text).split(separator: "\n") where line.hasPrefix(name + "{") || line.hasPrefix(name + " ") {
                guard labels.allSatisfy({ line.contains($0) }) else { continue }
                return Double(line.split(separator: " ").last!)
            }
            return nil
        }

        static func health(_ port: Int) -> (status: Int, json: [String: Any]) {
            guard let (status, text) = try? get("http://127.0.0.1:\(port)/health") else { return (0, [:]) }
            let json = (try? JSONSerialization.jsonObject(with: Data(body(text).utf8))) as? [String: Any] ?? [:]
            return (status, json)
        }

        static func status(_ node: NodeUnderTest, json: Bool) throws -> String {
            let result = try runCommand(Binaries.supervisor, ["-config", node.configPath, "-status"] + (json ? ["-json"] : []))
            guard result.status == 0 else { throw TestFailure("-status: \(result.output)") }
            return result.output
        }

        /// Rows written on node 1 move node 1's published count and node 2's applied rows, cursor and lag
        /// histogram, by the number of rows (values, not names). Node 1 is configured as the production
        /// guide says (subsystem "replication"), and `curl …/metrics | grep harmonylite` shows them.
        @Test func metricsMoveAsRowsAreWrittenAndApplied() throws {
            let guide = try Endpoints(subsystem: "replication")
            let plain = try Endpoints()
            let cluster = try TestCluster(schema: Self.schema, extraTOML: [guide.toml, plain.toml, ""])
            let published = "harmonylite_replication_published"
            #expect(eventually(timeout: 20) { Self.metric(guide.metrics, published) != nil }, "\(cluster.logs())")
            let publishedBefore = try #require(Self.metric(guide.metrics, published))
            let appliedBefore = Self.metric(plain.metrics, "harmonylite_applied_rows_total") ?? 0
            let lagBefore = Self.metric(plain.metrics, "harmonylite_apply_lag_seconds_count", ["stream=\"harmonylite-changes-1\""]) ?? 0

            try cluster.sql(0, (1...25).map { "INSERT INTO kv VALUES (\($0), 'row \($0)');" }.joined())
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "25\n"), "\(cluster.logs())")
            // Counters arrive with the next heartbeats.
            #expect(
                eventually(timeout: 20) { Self.metric(guide.metrics, published) == publishedBefore + 25 },
                "published: \(String(describing: Self.metric(guide.metrics, published)))")
            #expect(
                eventually(timeout: 20) { Self.metric(plain.metrics, "harmonylite_applied_rows_total") == appliedBefore + 25 },
                "applied: \(String(describing: Self.metric(plain.metrics, "harmonylite_applied_rows_total")))")
            #expect(
                eventually(timeout: 20) {
                    Self.metric(plain.metrics, "harmonylite_apply_lag_seconds_count", ["stream=\"harmonylite-changes-1\""]) == lagBefore + 25
                })
            #expect(
                eventually(timeout: 20) {
                    let head = Self.metric(plain.metrics, "harmonylite_stream_last_sequence", ["stream=\"harmonylite-changes-1\""])
                    return head != nil && head! >= 1 && head == Self.metric(plain.metrics, "harmonylite_stream_cursor", ["stream=\"harmonylite-changes-1\""])
                })
            #expect(Self.metric(guide.metrics, "harmonylite_replication_pending_publish") == 0)
            #expect(Self.metric(plain.metrics, "harmonylite_worker_up", ["worker=\"applier\""]) == 1)
            #expect((Self.metric(plain.metrics, "harmonylite_worker_resident_memory_bytes", ["worker=\"applier\""]) ?? 0) > 1_000_000)

            // The production guide's diagnostic command, as written (with our port).
            let guideCommand = try runCommand("/bin/sh", ["-c", "curl -s http://localhost:\(guide.metrics)/metrics | grep harmonylite"])
            #expect(
                guideCommand.status == 0 && guideCommand.output.contains("harmonylite_replication_pending_publish{node_id=\"1\"}"), "\(guideCommand.output)")
            // HarmonyLite's metrics are on every path of prometheus.bind, with the exposition format's type.
            let other = try Self.get("http://127.0.0.1:\(plain.metrics)/anything")
            #expect(other.status == 200 && other.text.contains("Content-Type: text/plain; version=0.0.4"), "\(other.text.prefix(300))")
        }

        /// Killing the broker (by PID) turns /health to 503 until its replacement is connected again, then
        /// 200; `-status` shows the new broker's pid and its restart count.
        @Test func healthFollowsTheBrokerAndStatusShowsTheRestart() throws {
            let endpoints = try Endpoints()
            // A 3 s restart delay holds the broker down long enough to be seen from outside.
            let slowRestart = endpoints.toml + "[workers.broker]\nrestart_backoff_initial = 3000\n"
            let cluster = try TestCluster(size: 2, schema: Self.schema, extraTOML: [slowRestart, ""])
            let node = cluster.node(0)
            #expect(eventually(timeout: 20) { Self.health(endpoints.health).status == 200 }, "\(Self.health(endpoints.health)) \(node.log)")
            let healthy = Self.health(endpoints.health).json
            #expect(healthy["status"] as? String == "healthy" && healthy["node_id"] as? Int == 1 && healthy["nats_connected"] as? Bool == true)
            #expect(healthy["db_connected"] as? Bool == true && healthy["cdc_installed"] as? Bool == true && healthy["tables_tracked"] as? Int == 1)
            let type = try Self.get("http://127.0.0.1:\(endpoints.health)/health").text
            #expect(type.contains("Content-Type: application/json"), "\(type)")

            let broker = try #require(node.children()["broker"])
            kill(broker, SIGKILL)
            #expect(eventually(timeout: 10, interval: 0.05) { Self.health(endpoints.health).status == 503 }, "\(node.log)")
            let sick = Self.health(endpoints.health).json
            #expect(sick["status"] as? String == "unhealthy", "\(sick)")
            #expect(eventually(timeout: 30) { Self.health(endpoints.health).status == 200 }, "\(node.log)")
            let newBroker = try #require(node.children()["broker"])
            #expect(newBroker != broker)

            let json = try Self.status(node, json: true)
            let report = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            let workers = try #require(report["workers"] as? [[String: Any]])
            let brokerEntry = try #require(workers.first { $0["name"] as? String == "broker" })
            #expect(brokerEntry["pid"] as? Int == Int(newBroker), "\(brokerEntry)")
            #expect(brokerEntry["restarts"] as? Int == 1, "\(brokerEntry)")
            #expect(brokerEntry["state"] as? String == "running")
            #expect(report["nats_connected"] as? Bool == true)
            let text = try Self.status(node, json: false)
            let brokerLine = try #require(text.split(separator: "\n").first { $0.hasPrefix("broker ") })
            let columns = brokerLine.split(separator: " ")
            #expect(columns[1] == "running" && columns[2] == "\(newBroker)" && columns[3] == "1", "\(text)")
            #expect(text.contains("harmonylite-changes-1") && text.contains("NATS:            connected"), "\(text)")
        }

        /// `format = "json"`: every line of ours parses, carries node_id, process and pid as keys, and
        /// metadata (a refused table's name) as keys of their own.
        @Test func jsonLogLinesParseAndCarryTheFields() throws {
            let directory = try TemporaryDirectory()
            try makeDatabase(directory.path + "/node1.db", "PRAGMA journal_mode=WAL; CREATE TABLE kv (k INTEGER PRIMARY KEY, v); CREATE TABLE nokey (a, b);")
            let node = try NodeUnderTest(toml: "[logging]\nformat = \"json\"\n", directory: directory)
            try node.waitUntilReady()
            #expect(node.terminate() == 0)
            let lines = node.log.split(separator: "\n").filter { $0.hasPrefix("{") }
            #expect(lines.count > 10, "\(node.log)")
            var processes: Set<String> = []
            var tableLine: [String: Any]?
            for line in lines {
                guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                    Issue.record("not JSON: \(line)")
                    continue
                }
                #expect(object["node_id"] as? Int == 1 && object["pid"] is Int && object["time"] is String && object["message"] is String, "\(line)")
                if let process = object["process"] as? String { processes.insert(process) }
                if object["table"] as? String == "nokey" { tableLine = object }
            }
            #expect(processes.isSuperset(of: ["supervisor", "broker", "snapshotter", "applier", "capturer"]), "\(processes)")
            let refused = try #require(tableLine, "no line with a table key: \(node.log)")
            #expect(refused["level"] as? String == "warning" && refused["process"] as? String == "capturer" && refused["reason"] is String)
        }

        /// A metrics port already taken stops the node at start, naming the port and the keys.
        @Test func aTakenPortStopsTheNodeSayingWhich() throws {
            let endpoints = try Endpoints()
            // Hold the port: a listening socket of this test.
            let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(holder) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(endpoints.metrics).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            #expect(bound == 0 && listen(holder, 1) == 0)
            let node = try NodeUnderTest(toml: endpoints.toml)
            #expect(node.waitForExit(timeout: 20) == 1, "\(node.log)")
            #expect(node.log.contains("cannot listen on 127.0.0.1:\(endpoints.metrics)") && node.log.contains("prometheus.bind"), "\(node.log)")
            #expect(node.children().isEmpty)
        }

        /// Under systemd with standard error on the journal, every line of ours starts with its syslog
        /// priority, so `journalctl -p err` finds the errors; elsewhere lines have no prefix.
        @Test func journalLinesCarryTheirPriority() throws {
            let node = try NodeUnderTest(toml: "[workers.capturer]\nrestart_backoff_initial = 100\n", logToJournal: true)
            try node.waitUntilReady()
            let capturer = try #require(node.children()["capturer"])
            kill(capturer, SIGKILL)
            #expect(eventually(timeout: 20) { node.log.contains("<3>") }, "\(node.log)")
            #expect(node.terminate() == 0)
            let ours = node.log.split(separator: "\n").filter { $0.contains("[supervisor]") || $0.contains("[capturer]") }
            #expect(!ours.isEmpty && ours.allSatisfy { $0.hasPrefix("<") }, "\(ours)")
            let errors = ours.filter { $0.hasPrefix("<3>") }
            #expect(errors.contains { $0.contains("capturer") }, "\(ours)")
            #expect(ours.contains { $0.hasPrefix("<6>") && $0.contains("ready") })
            let plain = try NodeUnderTest(toml: "")
            try plain.waitUntilReady()
            #expect(plain.terminate() == 0)
            #expect(!plain.log.split(separator: "\n").contains { $0.hasPrefix("<") }, "\(plain.log)")
        }

        /// `sleep_timeout`: with nothing written for that long the node stops with status 0, its lease holder
        /// having saved a snapshot first; a write before then keeps it up.
        @Test func sleepTimeoutStopsTheNodeAfterASnapshot() throws {
            let directory = try TemporaryDirectory()
            try makeDatabase(directory.path + "/node1.db", "PRAGMA journal_mode=WAL; " + Self.schema)
            let node = try NodeUnderTest(toml: "sleep_timeout = 4000\n", directory: directory)
            try node.waitUntilReady()
            // Hold the lease first (a single node takes it at once), then write: the write restarts the timer.
            #expect(eventually(timeout: 20) { ((try? Self.status(node, json: true)) ?? "").contains("\"lease_held_here\":true") }, "\(node.log)")
            _ = try runCommand("/usr/bin/sqlite3", [node.database, "INSERT INTO kv VALUES (1, 'wake');"])
            let wrote = Date()
            let status = node.waitForExit(timeout: 60)
            #expect(status == 0, "\(node.log)")
            #expect(Date().timeIntervalSince(wrote) >= 4, "stopped \(Date().timeIntervalSince(wrote)) s after a write")
            #expect(node.log.contains("sleep_timeout: saved a snapshot"), "\(node.log)")
            #expect(node.log.contains("sleep_timeout: no change published or applied"), "\(node.log)")
            // The snapshot is in the store: a second start of the same node finds it (-save-snapshot is not needed).
            #expect(!node.log.contains("the last snapshot failed"))
        }

        /// deploy/monitoring: promtool accepts the rules and their unit tests pass; a real Prometheus on
        /// loopback loads them, scrapes two running nodes, answers for the lag metric through its HTTP API,
        /// and runs every query of the Grafana dashboard.
        @Test func aRealPrometheusScrapesTheNodesWithTheShippedRules() throws {
            let monitoring = Self.root + "/deploy/monitoring"
            let check = try runCommand("/usr/bin/promtool", ["check", "rules", monitoring + "/alerts.yml"])
            #expect(check.status == 0, "\(check.output)")
            let unit = try runCommand("/usr/bin/promtool", ["test", "rules", monitoring + "/alerts-test.yml"])
            #expect(unit.status == 0, "\(unit.output)")

            let first = try Endpoints(), second = try Endpoints()
            let cluster = try TestCluster(size: 2, schema: Self.schema, extraTOML: [first.toml, second.toml])
            let directory = try TemporaryDirectory()
            let port = try freePort()
            let config = directory.write(
                "prometheus.yml",
                """
                global: {scrape_interval: 1s, evaluation_interval: 1s}
                rule_files: ["\(monitoring)/alerts.yml"]
                scrape_configs:
                  - job_name: harmonylite
                    static_configs: [{targets: ["127.0.0.1:\(first.metrics)", "127.0.0.1:\(second.metrics)"]}]
                """)
            let prometheus = try ServerUnderTest(
                "/usr/bin/prometheus",
                [
                    "--config.file=\(config)", "--storage.tsdb.path=\(directory.path)/data", "--web.listen-address=127.0.0.1:\(port)",
                ], log: directory.path + "/prometheus.log")
            defer { prometheus.stop() }
            #expect(prometheus.waitForTCP(port: port, timeout: 30), "\((try? String(contentsOfFile: prometheus.log, encoding: .utf8)) ?? "")")

            try cluster.sql(0, (1...10).map { "INSERT INTO kv VALUES (\($0), 'row \($0)');" }.joined())
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "10\n"), "\(cluster.logs())")
            func query(_ expression: String) throws -> (status: String, result: [[String: Any]]) {
                let result = try runCommand(
                    "/usr/bin/curl", ["-s", "--max-time", "5", "-G", "http://127.0.0.1:\(port)/api/v1/query", "--data-urlencode", "query=\(expression)"])
                let object = (try? JSONSerialization.jsonObject(with: Data(result.output.utf8))) as? [String: Any] ?? [:]
                let data = object["data"] as? [String: Any] ?? [:]
                return (object["status"] as? String ?? "none: \(result.output)", data["result"] as? [[String: Any]] ?? [])
            }
            // Node 2 applied node 1's ten rows: Prometheus has them in node 2's lag histogram.
            var answer: (status: String, result: [[String: Any]]) = ("", [])
            #expect(
                eventually(timeout: 30, interval: 0.5) {
                    answer = (try? query("harmonylite_apply_lag_seconds_count{node_id=\"2\",stream=\"harmonylite-changes-1\"}")) ?? ("", [])
                    return ((answer.result.first?["value"] as? [Any])?.last as? String).flatMap(Double.init).map { $0 >= 10 } ?? false
                }, "\(answer)")
            // Both targets scraped: node 2's series say nothing of node 1's first scrape (each target has its own
            // offset in the interval, and a loaded machine delays it).
            var up: [[String: Any]] = []
            #expect(
                eventually(timeout: 15, interval: 0.5) {
                    up = (try? query("up{job=\"harmonylite\"} == 1").result) ?? []
                    return up.count == 2
                }, "\(up)")

            // The rules loaded and evaluate without errors.
            let rules = try runCommand("/usr/bin/curl", ["-s", "--max-time", "5", "http://127.0.0.1:\(port)/api/v1/rules"])
            let groups =
                (((try? JSONSerialization.jsonObject(with: Data(rules.output.utf8))) as? [String: Any])?["data"] as? [String: Any])?["groups"]
                as? [[String: Any]] ?? []
            let loaded = groups.flatMap { $0["rules"] as? [[String: Any]] ?? [] }
            #expect(loaded.count == 14, "\(rules.output.prefix(500))")
            #expect(
                eventually(timeout: 10, interval: 0.5) {
                    let again = (try? runCommand("/usr/bin/curl", ["-s", "--max-time", "5", "http://127.0.0.1:\(port)/api/v1/rules"]))?.output ?? ""
                    return again.contains("\"health\":\"ok\"") && !again.contains("\"health\":\"err")
                })

            // Every dashboard query is valid PromQL for this Prometheus and finds series.
            let dashboard = try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: monitoring + "/grafana-dashboard.json"))) as? [String: Any])
            let panels = try #require(dashboard["panels"] as? [[String: Any]])
            #expect(panels.count >= 10)
            for panel in panels {
                for target in panel["targets"] as? [[String: Any]] ?? [] {
                    let expression = (target["expr"] as? String ?? "").replacingOccurrences(of: "$node", with: ".*")
                    let result = try query(expression)
                    #expect(result.status == "success", "\(panel["title"] ?? ""): \(expression) → \(result.status)")
                }
            }
        }
    }
}
