import Foundation
import TestSupport
import Testing

extension ProcessTests {
    /// One node id, one running node: a second node started with an id a running node holds is refused
    /// naming both hosts (and touches no consumer); a node killed with SIGKILL restarts once its stale claim
    /// ages out. On a shared (external) NATS, where a copied configuration does reach the cluster (with the
    /// embedded server, nats-server itself refuses the duplicate's routes: its server name is taken).
    @Suite(.serialized) struct NodeClaims {
        static let schema = "CREATE TABLE kv (k INTEGER PRIMARY KEY, v);"

        @Test func aSecondNodeWithTheSameIdIsRefusedNamingBothAndAKilledNodeRestarts() throws {
            let directory = try TemporaryDirectory()
            let elsewhere = try TemporaryDirectory()
            let server = try JetStreamServer(directory: directory.path)
            let toml = "[nats]\nurls = [\"\(server.url)\"]\n[snapshot]\nenabled = false\n"
            for path in [directory.path + "/node1.db", directory.path + "/node2.db", elsewhere.path + "/node2.db"] {
                try makeDatabase(path, "PRAGMA journal_mode=WAL;" + Self.schema)
            }
            let one = try NodeUnderTest(nodeID: 1, toml: toml, directory: directory)
            var two = try NodeUnderTest(nodeID: 2, toml: toml, directory: directory)
            try one.waitUntilReady(timeout: 60)
            try two.waitUntilReady(timeout: 60)
            // The sqlite3 shell exits non-zero on a lock a starting node holds a moment: wait for it, and check.
            func write(_ path: String, _ sql: String) throws {
                let result = try runCommand("/usr/bin/sqlite3", ["-cmd", ".timeout 10000", path, "PRAGMA trusted_schema=OFF;" + sql])
                #expect(result.status == 0, "\(sql) on \(path): \(result.output)")
            }
            func converge(_ expected: String) throws -> Bool {
                eventually(timeout: 30, interval: 0.2) {
                    [one.database, two.database].allSatisfy { (try? runCommand("/usr/bin/sqlite3", [$0, "SELECT count(*) FROM kv;"]))?.output == expected }
                }
            }
            try write(one.database, "INSERT INTO kv VALUES (1, 'one');")
            #expect(try converge("1\n"))
            #expect(two.log.contains("claimed the node id in the cluster"), "\(two.log.suffix(2000))")

            // A copied configuration: another host (here another directory) started as node 2.
            let startedAt = Date()
            let duplicate = try NodeUnderTest(nodeID: 2, toml: toml, directory: elsewhere)
            let status = duplicate.waitForExit(timeout: 60)
            let refusedAfter = Date().timeIntervalSince(startedAt)
            let log = duplicate.log
            #expect(status == 78, "\(String(describing: status))\n\(log.suffix(3000))")
            #expect(log.contains("node_id 2 is already used by a running node on host ") && log.contains("this node is on host "), "\(log.suffix(3000))")
            #expect(log.contains("(database \(two.database))") && log.contains("(database \(duplicate.database))"), "both named: \(log.suffix(3000))")
            #expect(!log.contains("consuming shard streams"), "the duplicate touched no consumer")
            try write(two.database, "INSERT INTO kv VALUES (2, 'two');")
            #expect(try converge("2\n"), "the running node 2 is untouched: \(two.log.suffix(2000))")

            // Node 2 killed: its claim is stale, not renewed; the restart waits it out and goes on.
            kill(two.pid, SIGKILL)
            #expect(two.waitForExit(timeout: 10) != nil)
            Thread.sleep(forTimeInterval: 1)
            let restartedAt = Date()
            two = try NodeUnderTest(nodeID: 2, toml: toml, directory: directory)
            try two.waitUntilReady(timeout: 60)
            let readyAfter = Date().timeIntervalSince(restartedAt)
            // The workers write their own lines: the broker's may reach the log a moment after READY=1.
            _ = eventually(timeout: 5) { two.log.contains("claimed the node id in the cluster") }
            let restarted = two.log
            #expect(restarted.contains("claimed the node id in the cluster"), "\(restarted.suffix(3000))")
            #expect(
                restarted.contains("still waiting for another holder's claim of this node id") && restarted.contains("waited_s="),
                "said while waiting: \(restarted.suffix(3000))")
            #expect(!two.notify.with("STATUS=starting: broker: still waiting for node id 2's claim").isEmpty, "systemctl status shows it")
            #expect(readyAfter < 30, "ready \(readyAfter) s after the restart")
            try write(one.database, "INSERT INTO kv VALUES (3, 'three');")
            try write(two.database, "INSERT INTO kv VALUES (4, 'four');")
            let counts = {
                [one.database, two.database].map { (try? runCommand("/usr/bin/sqlite3", [$0, "SELECT group_concat(k) FROM kv;"]))?.output ?? "?" }
            }
            #expect(try converge("4\n"), "rows \(counts()): node 1: \(one.log.suffix(1500))\nnode 2: \(two.log.suffix(2500))")
            print(log.split(separator: "\n").filter { $0.contains("claim") || $0.contains("refused") }.joined(separator: "\n"))
            print(
                "node-claim: the duplicate exited \(String(format: "%.1f", refusedAfter)) s after its start; the killed node was ready \(String(format: "%.1f", readyAfter)) s after its restart"
            )
            #expect(one.terminate() == 0 && two.terminate() == 0)
        }
    }
}
