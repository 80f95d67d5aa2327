import CurlTransfer
import Foundation
import HarmonyConfig
import NATSClient
import Snapshots
import TestSupport
import Testing

/// AWS Signature V4 against AWS's published example (S3 documentation, "GET Object").
@Test func awsSignatureMatchesThePublishedExample() {
    let signer = AWSSignatureV4(accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1")
    let headers = signer.sign(
        method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt", headers: ["Range": "bytes=0-9"],
        payloadHash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        date: Date(timeIntervalSince1970: 1_369_353_600))
    #expect(
        headers["Authorization"]
            == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )
    #expect(headers["x-amz-date"] == "20130524T000000Z")
}

extension ProcessTests {
    /// Each store round-trips a multi-megabyte snapshot against a real server the test starts, and a
    /// second upload replaces the first.
    @Suite(.serialized) struct SnapshotStoreServers {
        /// Two real snapshots (about 4 MB of random rows) and their metadata.
        static func snapshots(in directory: TemporaryDirectory) throws -> [(file: String, metadata: SnapshotMetadata)] {
            try (1...2).map { index in
                let database = directory.path + "/source\(index).db"
                try makeDatabase(
                    database,
                    """
                    PRAGMA journal_mode=WAL; CREATE TABLE blobs(id INTEGER PRIMARY KEY, payload BLOB);
                    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(4000 + index)) INSERT INTO blobs(payload) SELECT randomblob(1000) FROM n;
                    """)
                let file = directory.path + "/snapshot\(index).db"
                var metadata = try SnapshotMaker.make(from: database, into: file, nodeID: UInt64(index))
                metadata.createdAt += Int64(index)
                return (file, metadata)
            }
        }

        /// The store a node configured with `store` and `url` would open.
        static func store(_ store: String, url: String, in directory: TemporaryDirectory) throws -> any SnapshotStore {
            var settings = Configuration(dbPath: directory.path + "/unused.db", nodeID: 1)
            settings.snapshot.store = store
            if store == "webdav" { settings.snapshot.webdav.url = url } else { settings.snapshot.sftp.url = url }
            return try SnapshotStores.open(settings, connection: nil)
        }

        static func roundTrip(_ store: any SnapshotStore, _ directory: TemporaryDirectory) throws {
            #expect(try store.latest() == nil)
            #expect(try store.download(to: directory.path + "/nothing.db") { _, _ in } == nil)
            let snapshots = try Self.snapshots(in: directory)
            var reported: [Int64] = []
            for (file, metadata) in snapshots {
                try store.upload(file, metadata: metadata) { done, _ in reported.append(done) }
                #expect(try store.latest() == metadata)
                let copy = directory.path + "/downloaded.db"
                let downloaded = try store.download(to: copy) { _, _ in }
                #expect(downloaded == metadata)
                #expect(try FileDigest.sha256(of: copy).0 == metadata.sha256)
                try SnapshotRestorer.verify(copy, metadata: metadata)
            }
            #expect(reported.last == snapshots.last?.metadata.size, "upload progress did not reach the end")
        }

        @Test func natsStoreRoundTripsOnNATSServer() throws {
            let directory = try TemporaryDirectory()
            let server = try JetStreamServer(directory: directory.path)
            var settings = Configuration(dbPath: directory.path + "/unused.db", nodeID: 1)
            settings.snapshot.nats.bucket = "snapshots"
            let connection = try NATSConnection.connect(ConnectionSettings(urls: [server.url], name: "test"))
            try Self.roundTrip(try SnapshotStores.open(settings, connection: connection), directory)
            // One object, the newest: the first upload's chunks are gone.
            let state = try connection.streamState("OBJ_snapshots")
            let latest = try #require(try SnapshotStores.open(settings, connection: connection).latest())
            #expect(state.messages == UInt64((latest.size + 131_071) / 131_072) + 1, "\(state)")
        }

        @Test func s3StoreRoundTripsAndTheAWSCLIReadsIt() throws {
            let directory = try TemporaryDirectory()
            let port = try freePort()
            let server = try ServerUnderTest("/usr/bin/env", ["moto_server", "-H", "127.0.0.1", "-p", "\(port)"], log: directory.path + "/moto.log")
            defer { server.stop() }
            #expect(server.waitForTCP(port: port))
            var settings = Configuration.S3Store()
            (settings.endpoint, settings.bucket, settings.path) = ("127.0.0.1:\(port)", "backups", "harmonylite/snapshots")
            (settings.accessKey, settings.secret) = ("testing", "testing")
            let store = try S3SnapshotStore(settings)
            try Self.roundTrip(store, directory)

            // The AWS CLI finds the object where the configuration says, with the metadata, byte for byte.
            let environment = [
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            ]
            let copy = directory.path + "/aws-copy.db"
            let get = try runCommand(
                "/usr/bin/env", ["aws", "--endpoint-url", "http://127.0.0.1:\(port)", "s3", "cp", "s3://backups/harmonylite/snapshots/snapshot.db", copy],
                environment: environment)
            #expect(get.status == 0, "\(get.output)")
            let latest = try #require(try store.latest())
            #expect(try FileDigest.sha256(of: copy).0 == latest.sha256)
            let head = try runCommand(
                "/usr/bin/env",
                [
                    "aws", "--endpoint-url", "http://127.0.0.1:\(port)", "s3api", "head-object", "--bucket", "backups", "--key",
                    "harmonylite/snapshots/snapshot.db",
                ], environment: environment)
            #expect(head.output.contains("harmonylite-snapshot") && head.output.contains(latest.sha256), "\(head.output)")
        }

        @Test func webDAVStoreRoundTripsOnNginx() throws {
            let directory = try TemporaryDirectory()
            let port = try freePort()
            try FileManager.default.createDirectory(atPath: directory.path + "/www", withIntermediateDirectories: true)
            let htpasswd = directory.write("htpasswd", "harmony:{PLAIN}s3cret\n")
            let config = directory.write(
                "nginx.conf",
                """
                load_module /usr/lib/nginx/modules/ngx_http_dav_ext_module.so;
                user \(ProcessInfo.processInfo.environment["USER"] ?? "root"); daemon off; worker_processes 1; pid \(directory.path)/nginx.pid; error_log \(directory.path)/nginx-error.log;
                events {}
                http {
                    access_log off; client_body_temp_path \(directory.path)/body; proxy_temp_path \(directory.path)/proxy;
                    fastcgi_temp_path \(directory.path)/fastcgi; uwsgi_temp_path \(directory.path)/uwsgi; scgi_temp_path \(directory.path)/scgi;
                    server {
                        listen 127.0.0.1:\(port); root \(directory.path)/www; client_max_body_size 0;
                        location / {
                            dav_methods PUT DELETE MKCOL COPY MOVE; dav_ext_methods PROPFIND OPTIONS; dav_access user:rw;
                            auth_basic "snapshots"; auth_basic_user_file \(htpasswd);
                        }
                    }
                }
                """)
            let server = try ServerUnderTest("/usr/sbin/nginx", ["-c", config, "-e", directory.path + "/nginx-error.log"], log: directory.path + "/nginx.log")
            defer { server.stop() }
            #expect(server.waitForTCP(port: port))
            let url = "http://127.0.0.1:\(port)/dav?dir=/cluster/snapshots&login=harmony"
            try Self.roundTrip(try Self.store("webdav", url: url + "&secret=s3cret", in: directory), directory)
            let files = try FileManager.default.contentsOfDirectory(atPath: directory.path + "/www/dav/cluster/snapshots").sorted()
            #expect(files.count == 2 && files.allSatisfy { $0.hasPrefix("snapshot-") }, "older snapshots were not removed: \(files)")

            let refused = #expect(throws: SnapshotError.self) { try Self.store("webdav", url: url + "&secret=wrong", in: directory).latest() }
            #expect(refused?.description.contains("HTTP 401") == true, "\(String(describing: refused))")
        }

        @Test func sftpStoreRoundTripsOnSSHDAndChecksTheHostKey() throws {
            let directory = try TemporaryDirectory()
            let port = try freePort()
            for name in ["host_key", "client_key", "other_key"] {
                let generated = try runCommand("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", directory.path + "/" + name])
                #expect(generated.status == 0, "\(generated.output)")
            }
            let hostKey = try String(contentsOfFile: directory.path + "/host_key.pub", encoding: .utf8)
            let otherKey = try String(contentsOfFile: directory.path + "/other_key.pub", encoding: .utf8)
            _ = directory.write("authorized_keys", try String(contentsOfFile: directory.path + "/client_key.pub", encoding: .utf8))
            let knownHosts = directory.write("known_hosts", "[127.0.0.1]:\(port) \(hostKey)")
            let wrongHosts = directory.write("wrong_hosts", "[127.0.0.1]:\(port) \(otherKey)")
            let config = directory.write(
                "sshd_config",
                """
                Port \(port)
                ListenAddress 127.0.0.1
                HostKey \(directory.path)/host_key
                PidFile \(directory.path)/sshd.pid
                AuthorizedKeysFile \(directory.path)/authorized_keys
                StrictModes no
                UsePAM no
                PasswordAuthentication no
                KbdInteractiveAuthentication no
                PermitRootLogin prohibit-password
                Subsystem sftp internal-sftp
                """)
            // sshd insists on its privilege-separation directory (normally made by its init script).
            try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
            // sshd daemonizes and is stopped by the PID it writes: kept as a child, sshd's own children
            // confuse Foundation's Process, whose next wait then blocks on sshd.
            let started = try runCommand("/usr/sbin/sshd", ["-f", config, "-E", directory.path + "/sshd.log"])
            #expect(started.status == 0, "\(started.output)")
            defer {
                if let text = try? String(contentsOfFile: directory.path + "/sshd.pid", encoding: .utf8),
                    let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
                {
                    kill(pid, SIGTERM)
                }
            }
            #expect(eventually(timeout: 10) { FileManager.default.fileExists(atPath: directory.path + "/sshd.pid") })
            let user = ProcessInfo.processInfo.environment["USER"] ?? "root"
            let url = "sftp://\(user)@127.0.0.1:\(port)\(directory.path)/remote/snapshots?key=\(directory.path)/client_key"
            try Self.roundTrip(try Self.store("sftp", url: url + "&known_hosts=\(knownHosts)", in: directory), directory)
            let files = try FileManager.default.contentsOfDirectory(atPath: directory.path + "/remote/snapshots").sorted()
            #expect(files.count == 2 && files.allSatisfy { $0.hasPrefix("snapshot-") }, "older snapshots were not removed: \(files)")

            // A server whose host key is not the one on record is refused.
            let refused = #expect(throws: CurlError.self) { try Self.store("sftp", url: url + "&known_hosts=\(wrongHosts)", in: directory).latest() }
            #expect(refused?.description.contains("SSH remote key was not OK") == true, "\(String(describing: refused))")
        }
    }
}
