import Foundation
import HarmonyConfig
import NATSClient
import NodeNATS
import TestSupport
import Testing

extension ProcessTests {
    /// A leaked node password (node 1's, derived from the cluster secret as its supervisor derives it) in the
    /// hands of an independent client (nats-py, `Attacks/leaked_password.py`), on a real 3-node embedded
    /// cluster: every JetStream reconfiguration it tries is refused by the embedded server's permissions,
    /// so nothing is forged, stalled, shrunk or sealed, and the cluster keeps replicating. One cluster for
    /// every attack, the destructive ones last.
    @Suite(.serialized) struct LeakedPassword {
        static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Attacks/leaked_password.py").path
        /// The `python3` of the PATH, as `scripts/test.sh` (which installs nats-py into it) and ObjectStoreTests.
        static let python = "/usr/bin/env"
        static let natsPyAvailable = ((try? runCommand(python, ["python3", "-c", "import nats"]).status) ?? 1) == 0
        static let stream = "harmonylite-changes-1"

        struct Outcome {
            var accepted: Bool
            var detail: String
        }

        /// Runs `name` with node 1's password, or the administrator's.
        static func attack(_ cluster: TestCluster, _ name: String, _ argument: String = "", asAdministrator: Bool = false) throws -> Outcome {
            let credentials = try credentials(cluster)
            let (user, password) = asAdministrator ? (credentials.adminUser, credentials.adminPassword) : (credentials.clientUser, credentials.clientPassword)
            let result = try runCommand(python, ["python3", script, "nats://127.0.0.1:\(cluster.clientPorts[0])", user, password, name, argument])
            guard result.status == 0, let line = result.output.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            else {
                throw TestFailure("attack \(name) did not run: \(result.output)")
            }
            return Outcome(accepted: object["accepted"] as? Bool ?? true, detail: object["detail"] as? String ?? "")
        }

        static func credentials(_ cluster: TestCluster) throws -> EmbeddedCredentials { try credentials(directory: cluster.directory.path) }

        static func credentials(directory: String) throws -> EmbeddedCredentials {
            ClusterSecret.credentials(secret: try ClusterSecret.load(at: directory + "/harmonylite-cluster.secret"), nodeID: 1)
        }

        /// The administrator on node `index`'s server (what the supervisor's set-up uses).
        static func administrator(_ cluster: TestCluster, _ index: Int) throws -> NATSConnection {
            let credentials = try credentials(cluster)
            var settings = ConnectionSettings(urls: ["nats://127.0.0.1:\(cluster.clientPorts[index])"], name: "test-admin")
            settings.userName = credentials.adminUser
            settings.userPassword = credentials.adminPassword
            settings.ignoreDiscoveredServers = true
            return try NATSConnection.connect(settings)
        }

        /// A plain nats-server connecting to the node's leaf listener (`nats.leaf_listen`) without the
        /// credentials derived from the cluster secret is refused; with them it connects (so the refusal is
        /// about the credentials).
        @Test func aRogueLeafIsRefusedAtTheLeafListener() throws {
            let port = try freePort(), leafPort = try freePort()
            let node = try NodeUnderTest(toml: "[nats]\nbind_address = \"127.0.0.1:\(port)\"\nleaf_listen = \"127.0.0.1:\(leafPort)\"\n")
            defer { _ = node.terminate() }
            try node.waitUntilReady()
            let directory = node.directory.path
            func startLeaf(_ url: String, name: String) throws -> (Process, Int) {
                try Self.startPlainServer(directory: directory, name: name, body: "leafnodes { remotes: [ { urls: [\"\(url)\"] } ] }\n")
            }
            func leafs(_ monitor: Int) -> Int? {
                guard let result = try? runCommand("/usr/bin/curl", ["-s", "http://127.0.0.1:\(monitor)/leafz"]), result.status == 0,
                    let object = try? JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
                else { return nil }
                return object["leafnodes"] as? Int
            }
            let (rogue, rogueMonitor) = try startLeaf("nats://127.0.0.1:\(leafPort)", name: "rogue-leaf")
            defer { kill(rogue.processIdentifier, SIGINT); rogue.waitUntilExit() }
            #expect(eventually(timeout: 10) { leafs(rogueMonitor) != nil })
            Thread.sleep(forTimeInterval: 4)
            #expect(leafs(rogueMonitor) == 0, "a leaf without credentials was accepted")

            let credentials = try Self.credentials(directory: directory)
            let (member, memberMonitor) = try startLeaf("nats://\(credentials.leafUser):\(credentials.leafPassword)@127.0.0.1:\(leafPort)", name: "member-leaf")
            defer { kill(member.processIdentifier, SIGINT); member.waitUntilExit() }
            #expect(eventually(timeout: 15) { (leafs(memberMonitor) ?? 0) >= 1 }, "with the leaf credentials it connects")
        }

        /// Makes a CA (`<name>-ca.pem`/`.key`) and a certificate for 127.0.0.1 signed by it for each of `leaves`
        /// (`<leaf>.pem`/`.key`), with the openssl shell.
        /// `derivedFrom`: the CA key derived from that cluster secret (as every node derives it), under the
        /// nodes' CA name; else a fresh CA named after `name`.
        static func makeCertificates(in directory: String, ca name: String, leaves: [String], derivedFrom secret: [UInt8]? = nil) throws {
            func openssl(_ arguments: [String]) throws {
                let result = try runCommand("/usr/bin/openssl", arguments)
                guard result.status == 0 else { throw TestFailure("openssl \(arguments.joined(separator: " ")): \(result.output)") }
            }
            let ca = directory + "/\(name)-ca"
            if let secret {
                try Data(ClusterSecret.routeCAPrivateKeyDER(secret: secret)).write(to: URL(fileURLWithPath: ca + ".der"))
                try openssl(["ec", "-inform", "DER", "-in", ca + ".der", "-out", ca + ".key"])
                try openssl(["req", "-x509", "-new", "-key", ca + ".key", "-out", ca + ".pem", "-days", "2", "-subj", "/CN=HarmonyLite routes CA"])
            } else {
                try openssl([
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", ca + ".key", "-out", ca + ".pem",
                    "-days", "2", "-subj", "/CN=\(name) CA",
                ])
            }
            try "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n".write(toFile: directory + "/ext.cnf", atomically: true, encoding: .utf8)
            for leaf in leaves {
                let path = directory + "/" + leaf
                try openssl([
                    "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path + ".key", "-out", path + ".csr",
                    "-subj", "/CN=\(leaf)",
                ])
                try openssl([
                    "x509", "-req", "-in", path + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key", "-CAcreateserial", "-days", "2",
                    "-extfile", directory + "/ext.cnf", "-out", path + ".pem",
                ])
            }
        }

        /// A plain nats-server joining `route` as a route, with TLS (certificate `<certificate>.pem`/`.key`
        /// in `directory`, trusting `<ca>-ca.pem`, verified both ways) or without; returns it and its
        /// monitoring port (`NATSAuth.routes`).
        static func startRouteServer(directory: String, name: String, route: String, certificate: String?, ca: String) throws -> (Process, Int) {
            let tls =
                certificate.map {
                    " tls { cert_file: \"\(directory)/\($0).pem\", key_file: \"\(directory)/\($0).key\", ca_file: \"\(directory)/\(ca)-ca.pem\", verify: true, timeout: 2 }"
                } ?? ""
            return try startPlainServer(
                directory: directory, name: name,
                body: "cluster { name: \"\(EmbeddedClusterName.value)\", listen: \"127.0.0.1:\(try freePort())\", routes: [\"\(route)\"]\n\(tls) }\n")
        }

        /// A plain nats-server (not ours) on loopback with `body` in its configuration; returns it and its monitoring port.
        static func startPlainServer(directory: String, name: String, body: String) throws -> (Process, Int) {
            let monitor = try freePort()
            let config = directory + "/\(name).conf"
            try ("listen: \"127.0.0.1:\(try freePort())\"\nhttp: \"127.0.0.1:\(monitor)\"\nserver_name: \"\(name)\"\n" + body)
                .write(toFile: config, atomically: true, encoding: .utf8)
            let server = Process()
            server.executableURL = URL(fileURLWithPath: "/usr/sbin/nats-server")
            server.arguments = ["-c", config]
            server.standardOutput = FileHandle.nullDevice
            server.standardError = FileHandle.nullDevice
            try server.run()
            return (server, monitor)
        }

        /// With route TLS (verified both ways), the route password sniffed from plaintext routes is not enough:
        /// a plain nats-server sending it is refused, and so is one with a certificate of another CA; a server
        /// with the password and a certificate of the cluster's CA joins (the refusal is about the certificate).
        /// Without TLS the same password joins (NATSAuth's `aServerWithoutTheSecretCannotJoinAsARoute`).
        @Test func aSniffedRoutePasswordIsNotEnoughWithRouteTLS() throws {
            let directory = try TemporaryDirectory()
            try Self.makeCertificates(in: directory.path, ca: "cluster", leaves: ["node", "member"])
            try Self.makeCertificates(in: directory.path, ca: "other", leaves: ["stranger"])
            let port = try freePort(), routePort = try freePort(), absentPeer = try freePort()
            let toml =
                "[nats]\nbind_address = \"127.0.0.1:\(port)\"\nroute_tls_cert_file = \"\(directory.path)/node.pem\"\n"
                + "route_tls_key_file = \"\(directory.path)/node.key\"\nroute_tls_ca_file = \"\(directory.path)/cluster-ca.pem\"\n"
            let node = try NodeUnderTest(
                toml: toml, arguments: ["-cluster-addr", "127.0.0.1:\(routePort)", "-cluster-peers", "nats://127.0.0.1:\(absentPeer)/"],
                directory: directory)
            defer { _ = node.terminate() }
            #expect(eventually(timeout: 20) { node.log.contains("Listening for route connections") }, "\(node.log)")
            let credentials = try Self.credentials(directory: directory.path)
            let sniffed = "nats://\(credentials.routeUser):\(credentials.routePassword)@127.0.0.1:\(routePort)"
            func startServer(name: String, certificate: String?, ca: String) throws -> (Process, Int) {
                try Self.startRouteServer(directory: directory.path, name: name, route: sniffed, certificate: certificate, ca: ca)
            }
            for (name, certificate, ca) in [("sniffer", nil, "cluster"), ("stranger", "stranger", "other")] as [(String, String?, String)] {
                let (rogue, monitor) = try startServer(name: name, certificate: certificate, ca: ca)
                defer { kill(rogue.processIdentifier, SIGINT); rogue.waitUntilExit() }
                #expect(eventually(timeout: 10) { NATSAuth.routes(monitorPort: monitor) != nil })
                Thread.sleep(forTimeInterval: 4)
                #expect(NATSAuth.routes(monitorPort: monitor) == 0, "\(name) joined as a route with the sniffed password")
            }
            let (member, monitor) = try startServer(name: "member", certificate: "member", ca: "cluster")
            defer { kill(member.processIdentifier, SIGINT); member.waitUntilExit() }
            #expect(eventually(timeout: 15) { (NATSAuth.routes(monitorPort: monitor) ?? 0) >= 1 }, "with the cluster's certificate it joins")
        }

        @Test func everyAttackWithANodesPasswordIsRefused() throws {
            try #require(Self.natsPyAvailable, "nats-py is not installed for python3 (scripts/test.sh installs it: python3 -m pip install nats-py)")
            let cluster = try TestCluster(schema: "CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT);")
            let rows = "SELECT group_concat(k, ' ') FROM (SELECT k FROM kv ORDER BY k);"
            try cluster.sql(0, "INSERT INTO kv VALUES (1, 'before');")
            #expect(try cluster.converge(rows, to: "1\n", timeout: 30), "\(cluster.problems())")
            let asNode1 = try NATSConnection.connect(try cluster.clientSettings(0, name: "reader"))
            let before = try asNode1.streamState(Self.stream)
            var accepted: [String] = []
            func run(_ name: String, _ argument: String = "") throws {
                let outcome = try Self.attack(cluster, name, argument)
                print("leaked-password attack \(name): \(outcome.accepted ? "ACCEPTED" : "refused") — \(outcome.detail)")
                if outcome.accepted { accepted.append(name) }
                #expect(!outcome.accepted, "the attack \(name) went through: \(outcome.detail)")
            }

            // Beyond the role: another node's registry key, buckets made or deleted, another object store,
            // a forged reply on another client's inbox.
            for name in ["kv-other-node", "kv-create-bucket", "kv-delete-bucket", "object-other-bucket", "object-delete-bucket", "inbox-reply"] {
                try run(name)
            }

            // Node 2's consumer: neither read from nor deleted; node 2 keeps receiving.
            let node2Consumer = try #require(try asNode1.consumerNames(stream: Self.stream).first { $0.hasPrefix("harmonylite-node-2-1") })
            try run("consumer-steal", node2Consumer)
            try run("consumer-delete", node2Consumer)
            try cluster.sql(0, "INSERT INTO kv VALUES (2, 'after the consumer attacks');")
            #expect(try cluster.converge(rows, to: "1 2\n", timeout: 30), "\(cluster.problems())")

            // Self-healing: the administrator (or anything else) deletes node 2's consumer; node 2 makes a new
            // one from its cursor and gets the next write.
            do {
                try Self.administrator(cluster, 1).deleteConsumer(stream: Self.stream, name: node2Consumer)
            } catch {
                Issue.record("cannot delete node 2's consumer as the administrator: \(error)")
            }
            try cluster.sql(0, "INSERT INTO kv VALUES (3, 'after the consumer vanished');")
            #expect(try cluster.converge(rows, to: "1 2 3\n", timeout: 30), "node 2 did not recover its deleted consumer: \(cluster.problems())")
            #expect(cluster.node(1).log.contains("the consumer no longer exists"), "\(cluster.node(1).log.suffix(3000))")

            // Forgery through a republishing stream, and every stream reconfiguration.
            let forged = OriginSubjects.forged(origin: 2, key: 100, value: "forged").map { String(format: "%02x", $0) }.joined()
            try run("republish", forged)
            for name in ["sources", "mirror"] { try run(name) }
            try run("message-delete", "1")
            for name in ["max-msgs", "rollup", "purge", "subjects", "seal", "stream-delete"] { try run(name) }

            // Nothing happened: the stream holds all it held, nothing forged was applied, writes replicate.
            try cluster.sql(0, "INSERT INTO kv VALUES (4, 'after every attack');")
            #expect(try cluster.converge(rows, to: "1 2 3 4\n", timeout: 30), "\(cluster.problems())")
            let after = try asNode1.streamState(Self.stream)
            #expect(after.firstSequence == before.firstSequence && after.messages >= before.messages + 3, "before \(before), after \(after)")
            #expect(accepted.isEmpty, "accepted: \(accepted)")
            // No shard is reported stalled on any node (`-status -json` names none) once all is applied.
            for index in 0..<3 {
                var status = ""
                #expect(
                    eventually(timeout: 30, interval: 1) {
                        status = (try? runCommand(Binaries.supervisor, ["-config", cluster.node(index).configPath, "-status", "-json"]).output) ?? ""
                        return status.contains("\"streams\"") && !status.contains("stalled_seconds")
                    }, "node \(index + 1): \(status)")
            }

            // Defence in depth: even a republishing stream made by the administrator, onto node 1's own
            // subject with a batch claiming node 1, is refused by every applier (its republish headers).
            let ownForged = OriginSubjects.forged(origin: 1, key: 200, value: "republished").map { String(format: "%02x", $0) }.joined()
            let republished = try Self.attack(cluster, "republish-own", ownForged, asAdministrator: true)
            #expect(republished.accepted, "the administrator could not make the republishing stream: \(republished.detail)")
            for index in 0..<3 {
                #expect(
                    eventually(timeout: 20) { ((try? Parking.parked(cluster, index)) ?? "").contains("\tforged-origin\t") },
                    "node \(index + 1) did not park the republished message: \(cluster.node(index).log.suffix(2000))")
                #expect(cluster.node(index).log.contains("it carries republish headers"), "node \(index + 1): \(cluster.node(index).log.suffix(2000))")
                #expect(try cluster.sql(index, "SELECT count(*) FROM kv WHERE k IN (100, 200);") == "0\n", "node \(index + 1) applied a forged row")
            }

            // The nodes' own users were never refused anything: every JetStream subject they use is allowed.
            // (nats-server logs each refusal with the client's name: the attacker's are there.)
            #expect(
                cluster.node(0).log.contains("leaked-password-attacker") && cluster.node(0).log.contains("Violation"), "\(cluster.node(0).log.suffix(2000))")
            for index in 0..<3 {
                let refused = cluster.node(index).log.split(separator: "\n").filter { $0.contains("Violation") && !$0.contains("leaked-password-attacker") }
                #expect(refused.isEmpty, "node \(index + 1)'s own user was refused: \(refused.prefix(10).joined(separator: "\n"))")
            }
        }
    }
}
