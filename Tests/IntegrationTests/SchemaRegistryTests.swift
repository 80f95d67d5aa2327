import Foundation
import TestSupport
import Testing

extension ProcessTests {
    /// `-schema-status` prints the database's real hash; every running node keeps its entry in the schema
    /// registry current, so `-schema-status-cluster` sees a migration on one node within seconds, and sees
    /// the cluster agree again once every node ran it.
    @Suite(.serialized) struct SchemaRegistry {
        static func status(_ cluster: TestCluster, _ index: Int, _ flag: String) throws -> String {
            let result = try runCommand(Binaries.supervisor, ["-config", cluster.node(index).configPath, flag])
            guard result.status == 0 else { throw TestFailure("\(flag) on node \(index + 1) exited \(result.status): \(result.output)") }
            return result.output
        }

        static func localHash(_ cluster: TestCluster, _ index: Int) throws -> String? {
            try status(cluster, index, "-schema-status").split(separator: "\n")
                .first { $0.hasPrefix("Schema hash: ") }.map { String($0.dropFirst("Schema hash: ".count)) }
        }

        /// Waits until node 1's `-schema-status-cluster` output contains every line of `expected`.
        static func clusterStatus(_ cluster: TestCluster, shows expected: [String], timeout: Double = 20) throws -> String {
            var output = ""
            let shown = try eventually(timeout: timeout, interval: 0.5) {
                output = try status(cluster, 0, "-schema-status-cluster")
                return expected.allSatisfy { output.contains($0) }
            }
            guard shown else { throw TestFailure("-schema-status-cluster never showed \(expected); last:\n\(output)\n\(cluster.problems())") }
            return output
        }

        @Test func theClusterStatusFollowsAMigrationNodeByNode() throws {
            let cluster = try TestCluster(schema: "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT);")
            let hashes = try (0..<3).map { try Self.localHash(cluster, $0) }
            #expect(hashes[0]?.count == 64 && Set(hashes).count == 1, "\(hashes)")
            let local = try Self.status(cluster, 1, "-schema-status")
            #expect(local.contains("Local Schema Status") && local.contains("Node ID: 2") && local.contains("  - items"), "\(local)")

            let agreed = try Self.clusterStatus(cluster, shows: ["Total Nodes: 3", "Consistent: Yes"])
            #expect(agreed.contains("\(hashes[0]!.prefix(16)): Node 1, Node 2, Node 3"), "\(agreed)")

            _ = try cluster.sql(2, "ALTER TABLE items ADD COLUMN price REAL;")
            let changed = try Self.localHash(cluster, 2)
            #expect(changed != nil && changed != hashes[0])
            let diverged = try Self.clusterStatus(
                cluster, shows: ["Total Nodes: 3", "Consistent: No", "Schema Mismatches:\n  Node 3: hash \(changed!.prefix(16))"])
            #expect(!diverged.contains("  Node 1: hash \(hashes[0]!.prefix(16)),"), "node 1 is not a mismatch: \(diverged)")

            for index in [0, 1] { _ = try cluster.sql(index, "ALTER TABLE items ADD COLUMN price REAL;") }
            let healed = try Self.clusterStatus(cluster, shows: ["Total Nodes: 3", "Consistent: Yes", "\(changed!.prefix(16)): Node 1, Node 2, Node 3"])
            #expect(!healed.contains("Schema Mismatches:"), "\(healed)")
        }

        @Test func theClusterStatusSaysWhyWhenNoNodeRuns() throws {
            let node = try NodeUnderTest()
            try node.waitUntilReady(timeout: 60)
            _ = node.terminate()
            let result = try runCommand(Binaries.supervisor, ["-config", node.configPath, "-schema-status-cluster"])
            #expect(result.status == 1)
            #expect(result.output.contains("no running node for"), "\(result.output)")
        }
    }
}
