import Foundation
import TestSupport
import Testing

extension ProcessTests {
    /// Nodes configured with known secrets show them nowhere: not in any log line, not in any status line
    /// sent to systemd, not in the command line or environment of the supervisor or any child.
    @Suite(.serialized) struct SecretExposure {
        static let natsSecret = "nats-pw-7Q2xK9"
        static let webdavSecret = "dav-secret-Z4mP1w"
        static let s3Secret = "s3-secret-R8vN3j"

        static func toml(port: Int, store: String, webdavPort: Int) -> String {
            """
            [nats]
            bind_address = "127.0.0.1:\(port)"
            user_name = "harmonylite"
            user_password = "\(natsSecret)"
            [snapshot]
            store = "\(store)"
            [snapshot.webdav]
            url = "http://127.0.0.1:\(webdavPort)/dav?dir=snaps&login=u&secret=\(webdavSecret)&again=1&secret=\(webdavSecret)"
            [snapshot.s3]
            endpoint = "127.0.0.1:\(webdavPort)"
            bucket = "b"
            access_key = "AKIA"
            secret = "\(s3Secret)"
            """
        }

        /// Every place a secret must not be, for the node and its children now.
        static func places(_ node: NodeUnderTest) -> [(String, String)] {
            var places: [(String, String)] = [("log", node.log)]
            places += node.notify.all.map { ("notify", $0.text) }
            for (name, pid) in [("supervisor", node.pid)] + node.children().map({ ($0.key, $0.value) }) {
                for file in ["cmdline", "environ"] {
                    let bytes = FileManager.default.contents(atPath: "/proc/\(pid)/\(file)") ?? Data()
                    places.append(("\(name) \(file)", String(decoding: bytes, as: UTF8.self)))
                }
            }
            return places
        }

        static func expectNoSecret(in places: [(String, String)]) {
            for (place, text) in places {
                for secret in [natsSecret, webdavSecret, s3Secret] {
                    #expect(!text.contains(secret), "\(secret) in \(place): \(text.prefix(2000))")
                }
            }
        }

        /// A WebDAV store that does not answer: the snapshotter's errors name it again and again.
        @Test func failingStoreErrorsShowNoSecret() throws {
            let node = try NodeUnderTest(toml: Self.toml(port: try freePort(), store: "webdav", webdavPort: try freePort()))
            defer { _ = node.terminate() }
            #expect(eventually(timeout: 30) { node.log.components(separatedBy: "snapshot restore failed").count > 6 }, "\(node.log)")
            #expect(eventually(timeout: 10) { node.children()["broker"] != nil && node.children()["nats"] != nil }, "\(node.log)")
            Self.expectNoSecret(in: Self.places(node))
        }

        /// A running node with every worker up (the nats store, the other stores' secrets configured too).
        @Test func runningNodeShowsNoSecretInAnyChild() throws {
            let node = try NodeUnderTest(toml: Self.toml(port: try freePort(), store: "nats", webdavPort: try freePort()))
            defer { _ = node.terminate() }
            try node.waitUntilReady()
            #expect(Set(node.children().keys) == ["nats", "broker", "snapshotter", "applier", "capturer"], "\(node.children())")
            let places = Self.places(node)
            #expect(places.count == 1 + node.notify.all.count + 12)
            Self.expectNoSecret(in: places)
        }
    }
}
