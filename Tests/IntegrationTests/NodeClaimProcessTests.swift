import TestSupport
import Foundation
import Testing

extension ProcessTests {
    /// One node id, one running node: a second node started with an id a running node holds is refused
    /// naming both hosts (and touches no consumer); a node killed with SIGKILL restarts once its stale claim
    /// ages out.
    @Suite(.serialized) struct NodeClaims {
        static let schema = "CREATE TABLE kv (k INTEGER PRIMARY KEY, v);"

        @Test func aSecondNodeWithTheSameIdIsRefusedNamingBothAndAKilledNodeRestarts() throws {
            let cluster = try TestCluster(size: 3, schema: Self.schema, late: [2])
            try cluster.sql(0, "INSERT INTO kv VALUES (1, 'one');")
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "1\n", on: [0, 1]))
            #expect(cluster.node(1).log.contains("claimed node id 2 in the cluster"), "\(cluster.node(1).log.suffix(2000))")

            // A copied configuration: node 3's host started as node 2.
            try cluster.sql(2, Self.schema)
            try cluster.start(2, arguments: ["-node-id", "2"])
            let status = cluster.node(2).waitForExit(timeout: 60)
            let log = cluster.node(2).log
            #expect(status == 78, "\(String(describing: status))\n\(log.suffix(3000))")
            #expect(log.contains("node_id 2 is already used by a running node on host ") && log.contains("this node is on host "), "\(log.suffix(3000))")
            #expect(log.contains("(database \(cluster.path(1)))") && log.contains("(database \(cluster.path(2)))"), "both named: \(log.suffix(3000))")
            #expect(!cluster.node(1).log.contains("Consumer Deleted") && !cluster.node(1).log.contains("consuming a shard stream failed"),
                    "the running node 2 is untouched: \(cluster.node(1).log.suffix(2000))")
            cluster.stop(2)
            try cluster.sql(1, "INSERT INTO kv VALUES (2, 'two');")
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "2\n", on: [0, 1]))

            // Node 2 killed: its claim is stale, not renewed; the restart waits it out and goes on.
            let killed = cluster.node(1).pid
            kill(killed, SIGKILL)
            #expect(cluster.node(1).waitForExit(timeout: 10) != nil)
            Thread.sleep(forTimeInterval: 1)
            let restartedAt = Date()
            try cluster.start(1)
            try cluster.node(1).waitUntilReady(timeout: 60)
            let readyAfter = Date().timeIntervalSince(restartedAt)
            let restarted = cluster.node(1).log
            #expect(restarted.contains("claimed node id 2 in the cluster"), "\(restarted.suffix(3000))")
            #expect(readyAfter < 30, "ready \(readyAfter) s after the restart")
            try cluster.sql(0, "INSERT INTO kv VALUES (3, 'three');")
            try cluster.sql(1, "INSERT INTO kv VALUES (4, 'four');")
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "4\n", on: [0, 1], timeout: 30), "\(cluster.problems())")
            print("node-claim: killed node ready \(String(format: "%.1f", readyAfter)) s after its restart; waited: \(restarted.contains("still waiting for node id 2's claim"))")
        }
    }
}
