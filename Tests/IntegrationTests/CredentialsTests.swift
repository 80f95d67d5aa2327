import Foundation
import NATSClient
import NKeys
import TestSupport
import Testing

extension ProcessTests {
    /// The broker reaches NATS with what `[nats]` says: password, NKey seed, TLS. Real servers only.
    @Suite(.serialized) struct Credentials {
        @Test func embeddedServerRequiresTheConfiguredPassword() throws {
            let port = try freePort()
            let node = try NodeUnderTest(
                toml: """
                    [nats]
                    bind_address = "127.0.0.1:\(port)"
                    user_name = "harmonylite"
                    user_password = "s3cret"
                    """)
            try node.waitUntilReady()
            #expect(!node.log.contains("s3cret"), "the password reached a log line")
            // The server really enforces it: without credentials a client is refused.
            let refused = #expect(throws: NATSError.self) {
                try NATSConnection.connect(ConnectionSettings(urls: ["nats://127.0.0.1:\(port)"], name: "anonymous"))
            }
            #expect(refused?.description.contains("Authorization") == true, "\(String(describing: refused))")
            var settings = ConnectionSettings(urls: ["nats://127.0.0.1:\(port)"], name: "with-password")
            settings.userName = "harmonylite"
            settings.userPassword = "s3cret"
            #expect(try NATSConnection.connect(settings).isConnected)
            #expect(node.terminate() == 0)
        }

        @Test func embeddedServerAcceptsTheNKeyFromTheSeedFile() throws {
            let directory = try TemporaryDirectory()
            let seed = NKeySeed.generate()
            let seedFile = directory.write("user.nk", seed.encoded + "\n")
            let port = try freePort()
            let node = try NodeUnderTest(toml: "[nats]\nbind_address = \"127.0.0.1:\(port)\"\nseed_file = \"\(seedFile)\"\n", directory: directory)
            try node.waitUntilReady()
            let config = try String(contentsOfFile: directory.path + "/.node1.db.harmonylite/nats-server.conf", encoding: .utf8)
            #expect(config.contains("{ nkey: \"\(seed.publicKey)\" }"))
            // Another key is refused by the same server.
            let other = directory.write("other.nk", NKeySeed.generate().encoded)
            var settings = ConnectionSettings(urls: ["nats://127.0.0.1:\(port)"], name: "intruder")
            settings.seedFile = other
            settings.nkeyPublicKey = try NKeySeed(contentsOf: other).publicKey
            #expect(throws: NATSError.self) { try NATSConnection.connect(settings) }
            #expect(node.terminate() == 0)
        }

        /// A nats-server with JetStream on a free port, TLS with a certificate for `name` signed by a fresh
        /// CA (`<directory>/ca.pem`), user `app` with password `tls-pass`.
        static func startTLSServer(in directory: TemporaryDirectory, certifiedFor name: String, subjectAltName: String) throws -> (Process, Int) {
            let d = directory.path
            for command in [
                [
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(d)/ca.key", "-out", "\(d)/ca.pem", "-days", "2", "-subj",
                    "/CN=harmonylite-test-ca",
                ],
                ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(d)/server.key", "-out", "\(d)/server.csr", "-subj", "/CN=\(name)"],
                [
                    "x509", "-req", "-in", "\(d)/server.csr", "-CA", "\(d)/ca.pem", "-CAkey", "\(d)/ca.key", "-CAcreateserial", "-out", "\(d)/server.pem",
                    "-days", "2", "-extfile", directory.write("san.ext", "subjectAltName=\(subjectAltName)\n"),
                ],
            ] {
                let result = try runCommand("/usr/bin/openssl", command)
                guard result.status == 0 else { throw TestFailure("openssl \(command[0]): \(result.output)") }
            }
            let port = try freePort()
            let server = Process()
            server.executableURL = URL(fileURLWithPath: "/usr/sbin/nats-server")
            server.arguments = [
                "-a", "127.0.0.1", "-p", "\(port)", "-js", "-sd", "\(d)/js", "--tls", "--tlscert", "\(d)/server.pem",
                "--tlskey", "\(d)/server.key", "--user", "app", "--pass", "tls-pass",
            ]
            server.standardOutput = FileHandle.nullDevice
            server.standardError = FileHandle.nullDevice
            try server.run()
            return (server, port)
        }

        static func stop(_ server: Process) {
            kill(server.processIdentifier, SIGINT)
            server.waitUntilExit()
        }

        @Test func externalServerOverTLSWithPassword() throws {
            let directory = try TemporaryDirectory()
            let d = directory.path
            let (server, port) = try Self.startTLSServer(in: directory, certifiedFor: "127.0.0.1", subjectAltName: "IP:127.0.0.1")
            defer { Self.stop(server) }
            let node = try NodeUnderTest(
                toml: """
                    [nats]
                    urls = ["tls://127.0.0.1:\(port)"]
                    tls_ca_file = "\(d)/ca.pem"
                    user_name = "app"
                    user_password = "tls-pass"
                    """, directory: directory)
            try node.waitUntilReady()
            #expect(node.children()["nats"] == nil, "no embedded server when urls is set")
            let ready = supervisorLines(node.log, SupervisorMessage.ready, ["child": "broker", "detail": "JetStream answering at tls://127.0.0.1:\(port)"])
            #expect(!ready.isEmpty, "\(node.log.suffix(3000))")
            #expect(node.terminate() == 0)
        }

        /// The server's certificate is signed by the trusted CA but names another host: the broker refuses
        /// it (hostname verification), says so, and the node stops instead of talking to an impostor.
        @Test func externalServerWithACertificateForAnotherNameIsRefused() throws {
            let directory = try TemporaryDirectory()
            let d = directory.path
            let (server, port) = try Self.startTLSServer(in: directory, certifiedFor: "wrong.example", subjectAltName: "DNS:wrong.example")
            defer { Self.stop(server) }
            let node = try NodeUnderTest(
                toml: """
                    [nats]
                    urls = ["tls://127.0.0.1:\(port)"]
                    tls_ca_file = "\(d)/ca.pem"
                    user_name = "app"
                    user_password = "tls-pass"
                    connect_retries = 1
                    reconnect_wait_seconds = 1
                    [workers.broker]
                    restart_intensity = 1
                    restart_backoff_initial = 50
                    """, directory: directory)
            #expect(node.waitForExit(timeout: 30) == 1, "\(node.log)")
            #expect(node.notify.with("READY=1").isEmpty)
            #expect(node.log.contains("could not connect to NATS at tls://127.0.0.1:\(port)"), "\(node.log)")
        }

        @Test func unreachableNATSIsNamedAndStopsTheNode() throws {
            let port = try freePort()
            let node = try NodeUnderTest(
                toml: """
                    [nats]
                    urls = ["nats://127.0.0.1:\(port)"]
                    connect_retries = 1
                    reconnect_wait_seconds = 1
                    [workers.broker]
                    restart_intensity = 1
                    restart_backoff_initial = 50
                    """)
            let status = node.waitForExit(timeout: 30)
            #expect(status == 1)
            #expect(node.log.contains("could not connect to NATS at nats://127.0.0.1:\(port) in 1 attempts (nats.connect_retries)"))
            #expect(node.notify.with("READY=1").isEmpty)
        }
    }
}
