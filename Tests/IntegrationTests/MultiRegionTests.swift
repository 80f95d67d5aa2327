import Foundation
import TestSupport
import Testing

extension ProcessTests {
    /// The NATS guide's multi-region drawing and its monitoring section, on real nodes.
    @Suite(.serialized) struct MultiRegion {
        static let schema = "CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT NOT NULL);"

        /// Each node's `[nats]` lines: the first `inA` nodes in region a, the others in b; nodes 1 and 2 listen
        /// for leaf connections on `leafPorts`.
        static func regionsTOML(nodes: Int, inA: Int, leafPorts: [Int]) -> [String] {
            (0..<nodes).map { index in
                "region = \"\(index < inA ? "a" : "b")\"\nregions = [\"a\", \"b\"]\n"
                    + (index < leafPorts.count ? "leaf_listen = \"127.0.0.1:\(leafPorts[index])\"\n" : "")
            }
        }

        /// Region A = nodes 1-3, region B = nodes 4-6, each a 3-node embedded mesh; leaf connections 4→1 and
        /// (redundant) 5→2, and 6's (every server of a region that dials out needs one); shards = 4, replicas = 3; no NATS configuration written by hand. Writes on every
        /// node reach every node; node 1 (a leaf hub) killed, writes go on crossing through 5→2; node 1
        /// back, all six converge.
        @Test func threeAndThreeNodesAcrossTwoLeafConnections() throws {
            let leafPorts = try (0..<2).map { _ in try freePort() }
            let nats = Self.regionsTOML(nodes: 6, inA: 3, leafPorts: leafPorts)
            // Every node of region B dials out (nats-server hands what a leaf connection brings in only to that
            // server's own clients): 4 to 1 and 5 to 2 as drawn, each falling back to the other hub; 6 to either.
            let hubs = leafPorts.map { "nats://127.0.0.1:\($0)" }
            let arguments = (0..<6).map { index -> [String] in
                switch index {
                case 3: ["-leaf-servers", hubs[0] + "|" + hubs[1]]
                case 4: ["-leaf-servers", hubs[1] + "|" + hubs[0]]
                case 5: ["-leaf-servers", hubs[0] + "|" + hubs[1]]
                default: []
                }
            }
            let cluster = try TestCluster(
                size: 6, schema: Self.schema, extraTOML: Array(repeating: "[replication_log]\nshards = 4\nreplicas = 3\n", count: 6),
                routeGroups: [[0, 1, 2], [3, 4, 5]], nodeNATSTOML: nats, nodeArguments: arguments)
            func write(_ round: Int, on nodes: [Int]) throws {
                for index in nodes {
                    try cluster.sql(index, (0..<5).map { "INSERT INTO kv VALUES (\(round * 1000 + index * 10 + $0), 'r\(round)-n\(index + 1)');" }.joined())
                }
            }
            var since = Date()
            func took(_ what: String) { print("multi-region: \(what) in \(String(format: "%.1f", Date().timeIntervalSince(since))) s"); since = Date() }
            try write(1, on: Array(0..<6))
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "30\n", timeout: 90), "\(cluster.problems())")
            took("30 rows written on 6 nodes reached all 6")
            #expect(try cluster.agree("SELECT * FROM kv ORDER BY k;") != nil)

            // The generated configurations: one cluster and one JetStream domain per region, change subjects kept off the leaves.
            let natsConfig = try String(contentsOfFile: cluster.directory.path + "/.node4.db.harmonylite/nats-server.conf", encoding: .utf8)
            #expect(
                natsConfig.contains("name: \"e-harmonylite-b\"") && natsConfig.contains("domain: \"b\"") && natsConfig.contains("deny_imports"), "\(natsConfig)"
            )

            // Node 1, the hub of 4→1, killed with its whole process tree.
            let killed = [cluster.node(0).pid] + cluster.node(0).children().values
            killed.forEach { kill($0, SIGKILL) }
            cluster.stop(0)
            since = Date()
            try write(2, on: [1, 2, 3, 4, 5])
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "55\n", on: [1, 2, 3, 4, 5], timeout: 90), "\(cluster.problems())")
            took("hub 1 killed: 25 rows written on 5 nodes reached those 5")

            // Node 1 back: it catches up, and writes cross both ways again.
            since = Date()
            try cluster.start(0)
            try cluster.node(0).waitUntilReady(timeout: 90)
            took("node 1 restarted and ready")
            try write(3, on: Array(0..<6))
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "85\n", timeout: 120), "\(cluster.problems())")
            took("30 more rows on 6 nodes: all 6 at 85")
            #expect(try cluster.agree("SELECT * FROM kv ORDER BY k;") != nil)
        }

        /// Node ids are unique across regions: region a = nodes 1, 2 (both leaf hubs), region b = nodes 3, 4
        /// (dialling the hubs). A copy of node 2 started in region b (its own database, routes to 3 and 4,
        /// leaves to the hubs) is refused with exit 78 naming both hosts and databases (each region's claims
        /// bucket is its own: the broker reads the other regions' across the leaf), its server name is its
        /// region's, and afterwards writes on every node still reach every node: no row lost.
        @Test func aNodeIdRunningInAnotherRegionIsRefusedAndNothingIsLost() throws {
            let leafPorts = try (0..<2).map { _ in try freePort() }
            let nats = Self.regionsTOML(nodes: 4, inA: 2, leafPorts: leafPorts)
            let hubs = leafPorts.map { "nats://127.0.0.1:\($0)" }
            let leaves = { (index: Int) -> [String] in index < 2 ? [] : ["-leaf-servers", hubs[index % 2] + "|" + hubs[(index + 1) % 2]] }
            let toml = "[replication_log]\nshards = 2\nreplicas = 1\n"
            let cluster = try TestCluster(
                size: 4, schema: Self.schema, extraTOML: Array(repeating: toml, count: 4),
                routeGroups: [[0, 1], [2, 3]], nodeNATSTOML: nats, nodeArguments: (0..<4).map(leaves))
            func write(_ round: Int) throws {
                for index in 0..<4 {
                    try cluster.sql(index, (0..<5).map { "INSERT INTO kv VALUES (\(round * 1000 + index * 10 + $0), 'r\(round)-n\(index + 1)');" }.joined())
                }
            }
            try write(1)
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "20\n", timeout: 90), "\(cluster.problems())")

            // Node 2's configuration copied to another host (here another directory), in region b.
            let elsewhere = try TemporaryDirectory()
            let database = elsewhere.path + "/node2.db"
            try makeDatabase(database, "PRAGMA journal_mode=WAL;" + Self.schema)
            let peers = [2, 3].map { "nats://127.0.0.1:\(cluster.routePorts[$0])/" }.joined(separator: ",")
            let startedAt = Date()
            let duplicate = try NodeUnderTest(
                nodeID: 2,
                toml: toml
                    + "[nats]\nbind_address = \"127.0.0.1:\(try freePort())\"\ncluster_secret_file = \"\(cluster.directory.path)/harmonylite-cluster.secret\"\n"
                    + nats[2],
                arguments: ["-cluster-addr", "127.0.0.1:\(try freePort())", "-cluster-peers", peers] + leaves(3),
                directory: elsewhere, database: database)
            let status = duplicate.waitForExit(timeout: 90)
            print(
                "multi-region: the duplicate of node 2 in region b exited \(String(describing: status)) after \(String(format: "%.1f", Date().timeIntervalSince(startedAt))) s"
            )
            let log = duplicate.log
            #expect(status == 78, "\(String(describing: status))\n\(log.suffix(4000))")
            #expect(
                log.contains("in region a, node_id 2 is already used by a running node on host ") && log.contains("this node is on host "),
                "\(log.suffix(4000))")
            #expect(log.contains("(database \(cluster.path(1)))") && log.contains("(database \(database))"), "both named: \(log.suffix(4000))")
            #expect(!log.contains("consuming shard streams") && !log.contains("claimed the node id in the cluster"), "\(log.suffix(4000))")
            let generated = try String(contentsOfFile: elsewhere.path + "/.node2.db.harmonylite/nats-server.conf", encoding: .utf8)
            #expect(generated.contains("server_name: \"harmonylite-node-2-b\""), "\(generated)")

            // Nothing damaged: writes on every node reach every node, and all four agree row for row.
            try write(2)
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "40\n", timeout: 90), "\(cluster.problems())")
            #expect(try cluster.agree("SELECT * FROM kv ORDER BY k;") != nil)
            #expect(
                !cluster.logs().contains("is not the stream this node's cursor")
                    && !cluster.logs().contains("the shard stream is not the one this node's cursor belongs to"), "\(cluster.problems())")
        }

        /// The upgrade from a version that named a region's servers `harmonylite-node-<id>`: a region of 3 nodes
        /// (`replicas = 3`) whose servers carry that name (forced through `nats.server_config`, and no name
        /// recorded in the store, as an older version left it) restarted one node at a time keeps the name its
        /// store's JetStream peers know (renamed, the region's streams went offline and no node became ready):
        /// after each restart, writes on every node reach every node.
        @Test func anOlderVersionsRegionKeepsItsServerNamesNodeByNode() throws {
            let files = try TemporaryDirectory()
            let serverConfigs = (0..<3).map { files.write("old\($0 + 1).conf", "server_name: \"harmonylite-node-\($0 + 1)\"\n") }
            let nats = Self.regionsTOML(nodes: 3, inA: 3, leafPorts: []).enumerated().map { $1 + "server_config = \"\(serverConfigs[$0])\"\n" }
            let cluster = try TestCluster(
                size: 3, schema: Self.schema, extraTOML: Array(repeating: "[replication_log]\nreplicas = 3\n", count: 3), nodeNATSTOML: nats)
            try cluster.sql(0, "INSERT INTO kv VALUES (1, 'old names');")
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "1\n", timeout: 60), "\(cluster.problems())")
            for index in 0..<3 {
                cluster.stop(index)
                _ = files.write("old\(index + 1).conf", "# no server_name\n")
                let record = cluster.directory.path + "/nats/harmonylite-node-\(index + 1)/server-name"
                #expect(FileManager.default.fileExists(atPath: record))
                try FileManager.default.removeItem(atPath: record)
                try cluster.start(index)
                try cluster.node(index).waitUntilReady(timeout: 90)
                let generated = try String(contentsOfFile: cluster.directory.path + "/.node\(index + 1).db.harmonylite/nats-server.conf", encoding: .utf8)
                #expect(generated.contains("server_name: \"harmonylite-node-\(index + 1)\"\n"), "\(generated)")
                for writer in 0..<3 { try cluster.sql(writer, "INSERT INTO kv VALUES (\(100 * (index + 1) + writer), 'after \(index + 1)');") }
                #expect(
                    try cluster.converge("SELECT count(*) FROM kv;", to: "\(1 + 3 * (index + 1))\n", timeout: 90),
                    "node \(index + 1) restarted: \(cluster.problems())")
            }
            #expect(try cluster.agree("SELECT * FROM kv ORDER BY k;") != nil)
        }

        /// `monitor_port` in `nats.server_config` (the NATS guide's monitoring section) is where /varz answers,
        /// at every start (the generated `http:` key raced with it: 8222 in 1 of 4 starts); `-status` prints
        /// the monitoring URL, the routes and the JetStream peers.
        @Test func monitorPortInServerConfigWinsEveryStart() throws {
            let monitorPort = try freePort()
            let directory = try TemporaryDirectory()
            let serverConfig = directory.write("nats-server.conf", "# the operator's\nmonitor_port = \(monitorPort)\n")
            let cluster = try TestCluster(size: 3, schema: Self.schema, nodeNATSTOML: ["server_config = \"\(serverConfig)\"\n", "", ""])
            for start in 1...3 {
                if start > 1 {
                    cluster.stop(0)
                    try cluster.start(0)
                    try cluster.node(0).waitUntilReady(timeout: 60)
                }
                let varz = httpGet(port: monitorPort, path: "/varz") ?? ""
                #expect(varz.contains("\"server_name\""), "start \(start): no /varz on \(monitorPort)\n\(cluster.problems())")
                #expect(cluster.node(0).log.contains("monitoring on 127.0.0.1:\(monitorPort)"), "start \(start)")
            }
            var status = ""
            #expect(
                eventually(timeout: 30, interval: 1) {
                    status = (try? runCommand(Binaries.supervisor, ["-config", cluster.node(0).configPath, "-status"]).output) ?? ""
                    // Two routes (nodes 2 and 3) and a JetStream leader known.
                    let routes = status.split(separator: "\n").first { $0.hasPrefix("NATS routes:") } ?? ""
                    return status.contains("NATS monitoring: http://127.0.0.1:\(monitorPort)") && routes.split(separator: ",").count == 2
                        && status.contains("JetStream:       ") && status.contains("3 servers") && !status.contains("leader none known")
                }, "\(status)")
        }

        /// A node that ran without a region restarts in one: its shard stream gives its subjects up to the
        /// region's own stream and sources it, keeping its sequence (the node's cursor stays valid).
        @Test func aNodeJoinsARegionKeepingItsShardStream() throws {
            let directory = try TemporaryDirectory()
            let database = directory.path + "/node1.db"
            try makeDatabase(database, "PRAGMA journal_mode=WAL;" + Self.schema)
            var node: NodeUnderTest? = try NodeUnderTest(toml: "", directory: directory, database: database)
            try node!.waitUntilReady(timeout: 60)
            _ = try runCommand("/usr/bin/sqlite3", [database, "INSERT INTO kv VALUES (1, 'before');"])
            let status = { (node: NodeUnderTest) in (try? runCommand(Binaries.supervisor, ["-config", node.configPath, "-status"]).output) ?? "" }
            #expect(eventually(timeout: 20, interval: 0.5) { status(node!).contains("harmonylite-changes-1   1          1") })
            _ = node!.terminate()
            node = try NodeUnderTest(toml: "[nats]\nregion = \"a\"\n", directory: directory, database: database)
            try node!.waitUntilReady(timeout: 60)
            _ = try runCommand("/usr/bin/sqlite3", [database, "INSERT INTO kv VALUES (2, 'after');"])
            var text = ""
            #expect(
                eventually(timeout: 30, interval: 0.5) {
                    text = status(node!)
                    return text.contains("harmonylite-changes-1   2          2") && text.contains("JetStream:       domain a")
                }, "\(text)\n\(node!.log)")
        }
    }
}
