import Foundation
import HarmonyConfig
import NATSClient
import NodeNATS
import TestSupport
import Testing

extension ProcessTests {
    /// The embedded server authenticates from the first start, with no configuration: clients need this
    /// node's credentials (derived from the cluster secret), routes the cluster's; the node's own user
    /// cannot delete streams.
    @Suite(.serialized) struct NATSAuth {
        static func startRogueServer(clusterPort: Int, monitorPort: Int, route: String, directory: String) throws -> Process {
            let server = Process()
            server.executableURL = URL(fileURLWithPath: "/usr/sbin/nats-server")
            server.arguments = [
                "-a", "127.0.0.1", "-p", "\(try freePort())", "-m", "\(monitorPort)", "-n", "rogue-\(clusterPort)",
                "--cluster_name", EmbeddedClusterName.value, "--cluster", "nats://127.0.0.1:\(clusterPort)", "--routes", route,
            ]
            server.standardOutput = FileHandle.nullDevice
            server.standardError = FileHandle(forWritingAtPath: directory + "/rogue.log") ?? FileHandle.nullDevice
            try server.run()
            return server
        }

        static func routes(monitorPort: Int) -> Int? {
            guard let result = try? runCommand("/usr/bin/curl", ["-s", "http://127.0.0.1:\(monitorPort)/routez"]), result.status == 0,
                let object = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
            else { return nil }
            return object["num_routes"] as? Int
        }

        @Test func aLocalUserWithoutTheCredentialsCannotConnectOrPublish() throws {
            let port = try freePort()
            let node = try NodeUnderTest(toml: "[nats]\nbind_address = \"127.0.0.1:\(port)\"\n")
            defer { _ = node.terminate() }
            try node.waitUntilReady()
            let secretFile = node.directory.path + "/harmonylite-cluster.secret"
            var info = stat()
            #expect(stat(secretFile, &info) == 0 && info.st_mode & 0o777 == 0o600, "created at the first start, mode 0600")
            #expect(node.log.contains("created the cluster secret") && node.log.contains(secretFile))
            for settings in [
                ConnectionSettings(urls: ["nats://127.0.0.1:\(port)"], name: "anonymous"),
                {
                    var s = ConnectionSettings(urls: ["nats://127.0.0.1:\(port)"], name: "guess"); s.userName = "harmonylite-node-1"; s.userPassword = "guess";
                    return s
                }(),
            ] {
                let refused = #expect(throws: NATSError.self) { try NATSConnection.connect(settings) }
                #expect(refused?.description.contains("Authorization") == true, "\(String(describing: refused))")
            }
            // With the node's credentials it works: the refusal above is about the credentials.
            let connection = try NATSConnection.connect(try embeddedClientSettings(directory: node.directory.path, nodeID: 1, port: port, name: "node-1"))
            try connection.publish(subject: "harmonylite-change-log-1.1", payload: [1, 0])
            #expect(try connection.streamState("harmonylite-changes-1").messages >= 1)
        }

        @Test func theNodesOwnUserCannotDeleteStreamsAnOperatorCan() throws {
            let port = try freePort()
            let node = try NodeUnderTest(toml: "[nats]\nbind_address = \"127.0.0.1:\(port)\"\nuser_name = \"operator\"\nuser_password = \"operator-pw\"\n")
            defer { _ = node.terminate() }
            try node.waitUntilReady()
            let asNode = try NATSConnection.connect(try embeddedClientSettings(directory: node.directory.path, nodeID: 1, port: port, name: "node-1"))
            #expect(throws: NATSError.self) { try asNode.deleteStream("harmonylite-changes-1") }
            #expect(throws: Never.self) { try asNode.streamState("harmonylite-changes-1") }
            var operatorSettings = ConnectionSettings(urls: ["nats://127.0.0.1:\(port)"], name: "operator")
            operatorSettings.userName = "operator"
            operatorSettings.userPassword = "operator-pw"
            let asOperator = try NATSConnection.connect(operatorSettings)
            _ = try asOperator.addStream(name: "scratch", subjects: ["scratch.>"], replicas: 1)
            #expect(throws: Never.self) { try asOperator.deleteStream("scratch") }
            #expect(throws: NATSError.self) { try asOperator.streamState("scratch") }
        }

        /// The node's own user may list consumers and delete its own: a restarted broker consumes under a fresh
        /// name of its pool and deletes this node's leftovers of the shard (an older version's fixed name, an
        /// earlier start's name), never another node's consumer whose name only starts alike. (The leftovers
        /// are made by the operator: the node's user may create no other name than its pool's.)
        @Test func aRestartedBrokerDeletesItsLeftoverConsumersOnly() throws {
            let port = try freePort()
            let node = try NodeUnderTest(toml: "[nats]\nbind_address = \"127.0.0.1:\(port)\"\nuser_name = \"operator\"\nuser_password = \"operator-pw\"\n")
            defer { _ = node.terminate() }
            try node.waitUntilReady()
            let asNode = try NATSConnection.connect(try embeddedClientSettings(directory: node.directory.path, nodeID: 1, port: port, name: "node-1"))
            let stream = "harmonylite-changes-1"
            let ours = { (names: [String]) in names.filter { $0.hasPrefix("harmonylite-node-1-1") } }
            let first = try ours(asNode.consumerNames(stream: stream))
            try #require(first.count == 1, "node 1's consumers of shard 1: \(first)")
            #expect(first[0] != "harmonylite-node-1-1")
            let leftovers = ["harmonylite-node-1-1", "harmonylite-node-1-1-000000000000002a"].filter { $0 != first[0] }
            let others = ["harmonylite-node-11-1-000000000000002a", "harmonylite-node-1-11-000000000000002a", "harmonylite-node-1-1-by-hand"]
            var operatorSettings = ConnectionSettings(urls: ["nats://127.0.0.1:\(port)"], name: "operator")
            operatorSettings.userName = "operator"
            operatorSettings.userPassword = "operator-pw"
            let asOperator = try NATSConnection.connect(operatorSettings)
            for name in leftovers + others { _ = try PullConsumer(connection: asOperator, stream: stream, durable: name, afterSequence: 0) }
            #expect(throws: NATSError.self, "the node's user made a consumer outside its pool") {
                _ = try PullConsumer(connection: asNode, stream: stream, durable: "harmonylite-node-1-1-by-the-node", afterSequence: 0)
            }
            let broker = try #require(node.children()["broker"])
            kill(broker, SIGKILL)
            var names: [String] = []
            let cleaned = eventually(timeout: 60, interval: 0.2) {
                names = (try? asNode.consumerNames(stream: stream)) ?? []
                return node.children()["broker"].map { $0 != broker } == true && !names.contains(first[0]) && leftovers.allSatisfy { !names.contains($0) }
                    && names.filter { $0.hasPrefix("harmonylite-node-1-1-") && !others.contains($0) }.count == 1
            }
            #expect(cleaned, "consumers after the broker's restart: \(names)")
            #expect(others.allSatisfy(names.contains), "another consumer was deleted: \(names)")
        }

        /// A server without the cluster secret is refused as a route, and so is one with the route password
        /// (sniffed, say) but no certificate: routes run TLS with certificates made from the cluster secret.
        /// A server with the password and a certificate signed by the CA derived from the secret joins (so
        /// the refusals are about the credentials and the certificate).
        @Test func aServerWithoutTheSecretCannotJoinAsARoute() throws {
            let port = try freePort(), routePort = try freePort(), absentPeer = try freePort()
            // A JetStream cluster needs a peer; this one never answers, so the node never becomes ready, but its
            // server listens for routes.
            let node = try NodeUnderTest(
                toml: "[nats]\nbind_address = \"127.0.0.1:\(port)\"\n",
                arguments: ["-cluster-addr", "127.0.0.1:\(routePort)", "-cluster-peers", "nats://127.0.0.1:\(absentPeer)/"])
            defer { _ = node.terminate() }
            #expect(eventually(timeout: 20) { node.log.contains("Listening for route connections") }, "\(node.log)")
            let directory = node.directory.path
            let rogueMonitor = try freePort()
            let rogue = try Self.startRogueServer(
                clusterPort: try freePort(), monitorPort: rogueMonitor, route: "nats://127.0.0.1:\(routePort)", directory: directory)
            defer { kill(rogue.processIdentifier, SIGINT); rogue.waitUntilExit() }
            #expect(eventually(timeout: 10) { Self.routes(monitorPort: rogueMonitor) != nil })
            Thread.sleep(forTimeInterval: 4)
            #expect(Self.routes(monitorPort: rogueMonitor) == 0, "a route without credentials was accepted")

            let secret = try ClusterSecret.load(at: directory + "/harmonylite-cluster.secret")
            let credentials = ClusterSecret.credentials(secret: secret, nodeID: 9)
            let route = "nats://\(credentials.routeUser):\(credentials.routePassword)@127.0.0.1:\(routePort)"
            let (plain, plainMonitor) = try LeakedPassword.startRouteServer(
                directory: directory, name: "sniffer", route: route, certificate: nil, ca: "derived")
            defer { kill(plain.processIdentifier, SIGINT); plain.waitUntilExit() }
            #expect(eventually(timeout: 10) { Self.routes(monitorPort: plainMonitor) != nil })
            Thread.sleep(forTimeInterval: 4)
            #expect(Self.routes(monitorPort: plainMonitor) == 0, "the route password alone, in plaintext, joined")

            try LeakedPassword.makeCertificates(in: directory, ca: "derived", leaves: ["member"], derivedFrom: secret)
            let (member, memberMonitor) = try LeakedPassword.startRouteServer(
                directory: directory, name: "member", route: route, certificate: "member", ca: "derived")
            defer { kill(member.processIdentifier, SIGINT); member.waitUntilExit() }
            #expect(
                eventually(timeout: 15) { (Self.routes(monitorPort: memberMonitor) ?? 0) >= 1 },
                "with the route credentials and a certificate of the derived CA it joins")
            #expect(!node.log.contains(credentials.routePassword), "the route password reached a log line")
        }

        /// Each server lists only its own node's user: node 1's credentials are refused by node 2's server,
        /// so one node cannot connect anywhere as another.
        @Test func aNodesCredentialsWorkOnlyOnItsOwnServer() throws {
            let cluster = try TestCluster(size: 2, schema: "CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT);")
            let own = try cluster.clientSettings(1, name: "node-2")
            #expect(try NATSConnection.connect(own).isConnected)
            var asNode1 = try cluster.clientSettings(0, name: "node-1-on-node-2")
            asNode1.urls = own.urls
            #expect(throws: NATSError.self) { try NATSConnection.connect(asNode1) }
        }
    }
}

/// The embedded servers' cluster name, as the supervisor writes it.
enum EmbeddedClusterName {
    static let value = "e-harmonylite"
}
