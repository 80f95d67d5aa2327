import Foundation
import TestSupport
import Testing

extension ProcessTests {
    /// What an operator reads of a running node tells the truth: /metrics passes `promtool check metrics`,
    /// reloads are not restarts, `-status` reads fresh values, and every node knows the newest snapshot's age.
    @Suite(.serialized) struct MetricsAndStatus {
        typealias Endpoints = ProcessTests.Operability.Endpoints
        static let schema = "CREATE TABLE kv (k INTEGER PRIMARY KEY, v);"

        static func statusJSON(_ node: NodeUnderTest) -> [String: Any] {
            guard let result = try? runCommand(Binaries.supervisor, ["-config", node.configPath, "-status", "-json"]), result.status == 0 else { return [:] }
            return (try? JSONSerialization.jsonObject(with: Data(result.output.utf8))) as? [String: Any] ?? [:]
        }

        /// Debian's promtool lints the whole exposition clean (exit 0, nothing said): `published` is
        /// `published_total`, HarmonyLite's name stays as a gauge alias with the same value.
        @Test(
            .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool"), "skipped: promtool is not installed (apt-get install prometheus)"))
        func metricsPassPromtoolCheck() throws {
            let endpoints = try Endpoints()
            let directory = try TemporaryDirectory()
            try makeDatabase(directory.path + "/node1.db", "PRAGMA journal_mode=WAL; " + Self.schema)
            let node = try NodeUnderTest(toml: endpoints.toml, directory: directory)
            try node.waitUntilReady()
            _ = try runCommand("/usr/bin/sqlite3", [node.database, "INSERT INTO kv VALUES (1, 'a'), (2, 'b');"])
            #expect(eventually(timeout: 15) { Operability.metric(endpoints.metrics, "harmonylite_published_total") == 2 }, "\(node.log)")
            #expect(Operability.metric(endpoints.metrics, "harmonylite_published") == 2)
            let lint = try runCommand(
                "/bin/sh", ["-c", "curl -s --max-time 5 http://127.0.0.1:\(endpoints.metrics)/metrics | /usr/bin/promtool check metrics"])
            #expect(lint.status == 0 && lint.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(lint.output)")
            #expect(node.terminate() == 0)
        }

        /// SIGHUP reloads stop and start every worker: counted in harmonylite_worker_reloads_total, not in
        /// harmonylite_worker_restarts_total (which the shipped alert watches), nor in -status's RESTARTS.
        @Test func reloadsAreCountedApartFromRestarts() throws {
            let endpoints = try Endpoints()
            let node = try NodeUnderTest(toml: endpoints.toml)
            try node.waitUntilReady()
            for round in 1...2 {
                kill(node.pid, SIGHUP)
                #expect(eventually(timeout: 30) { node.log.components(separatedBy: "reload complete").count - 1 == round }, "\(node.log)")
            }
            for worker in ["broker", "snapshotter", "applier", "capturer"] {
                #expect(
                    eventually(timeout: 5) { Operability.metric(endpoints.metrics, "harmonylite_worker_reloads_total", ["worker=\"\(worker)\""]) == 2 },
                    "\(worker)")
                #expect(Operability.metric(endpoints.metrics, "harmonylite_worker_restarts_total", ["worker=\"\(worker)\""]) == 0, "\(worker)")
            }
            let workers = Self.statusJSON(node)["workers"] as? [[String: Any]] ?? []
            #expect(workers.count == 5 && workers.allSatisfy { $0["restarts"] as? Int == 0 }, "\(workers)")
            #expect(node.terminate() == 0)
        }

        /// `-status` right after a write: the stream's head includes the write in the same report that counts
        /// it published (before, the head was up to 2 s old: "LAST SEQ 0, CURSOR 1").
        @Test func statusIsFreshRightAfterAWrite() throws {
            let directory = try TemporaryDirectory()
            try makeDatabase(directory.path + "/node1.db", "PRAGMA journal_mode=WAL; " + Self.schema)
            let node = try NodeUnderTest(directory: directory)
            try node.waitUntilReady()
            for row in 1...3 {
                _ = try runCommand("/usr/bin/sqlite3", [node.database, "INSERT INTO kv VALUES (\(row), 'x');"])
                var report: [String: Any] = [:]
                #expect(
                    eventually(timeout: 10, interval: 0.02) {
                        report = Self.statusJSON(node)
                        return report["published_rows"] as? Int == row
                    }, "\(report)")
                let stream = (report["streams"] as? [[String: Any]])?.first ?? [:]
                #expect(stream["last_sequence"] as? Int == row, "the head in the report that counts row \(row) published: \(stream)")
            }
            #expect(node.terminate() == 0)
        }

        /// A snapshot saved on one node: the other node, which does not save snapshots, knows its age too
        /// (-status and harmonylite_snapshot_age_seconds), not "none known" and -1.
        @Test func everyNodeKnowsTheNewestSnapshotsAge() throws {
            let first = try Endpoints(), second = try Endpoints()
            let cluster = try TestCluster(size: 2, schema: Self.schema, extraTOML: [first.toml, second.toml])
            try cluster.sql(0, "INSERT INTO kv VALUES (1, 'a');")
            let saved = try runCommand(Binaries.supervisor, ["-config", cluster.node(0).configPath, "-save-snapshot"])
            #expect(saved.status == 0, "\(saved.output)")
            for (index, endpoints) in [(0, first), (1, second)] {
                var snapshot: [String: Any] = [:]
                #expect(
                    eventually(timeout: 45, interval: 0.5) {
                        snapshot = Self.statusJSON(cluster.node(index))["snapshot"] as? [String: Any] ?? [:]
                        return (snapshot["created_unix_ms"] as? Int ?? 0) > 0
                    }, "node \(index + 1): \(snapshot)")
                #expect(eventually(timeout: 5) { (Operability.metric(endpoints.metrics, "harmonylite_snapshot_age_seconds") ?? -1) >= 0 }, "node \(index + 1)")
            }
            let text = try runCommand(Binaries.supervisor, ["-config", cluster.node(1).configPath, "-status"])
            #expect(!text.output.contains("none known"), "\(text.output)")
        }
    }
}
