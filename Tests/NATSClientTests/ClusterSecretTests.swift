import Foundation
import NATSClient
import NodeNATS
import TestSupport
import Testing

/// The cluster secret file: created 0600 once, read back the same, refused when others can read it,
/// and every credential derived from it differs per node but not per server for routes.
@Suite struct ClusterSecretTests {
    @Test func createdOnceWithMode0600AndReadBackTheSame() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/harmonylite-cluster.secret"
        let first = try ClusterSecret.loadOrCreate(at: path)
        #expect(first.created && first.secret.count == 64)
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        let second = try ClusterSecret.loadOrCreate(at: path)
        #expect(!second.created && second.secret == first.secret)
        let one = ClusterSecret.credentials(secret: first.secret, nodeID: 1), two = ClusterSecret.credentials(secret: first.secret, nodeID: 2)
        #expect(one.routePassword == two.routePassword && one.clientPassword != two.clientPassword && one.clientUser == "harmonylite-node-1")
        #expect(ClusterSecret.credentials(secret: Array(repeating: 65, count: 64), nodeID: 1).routePassword != one.routePassword)
        // The administrator and the leaves: one password per cluster, none equal to another credential.
        #expect(one.adminPassword == two.adminPassword && one.leafPassword == two.leafPassword && one.adminUser == "harmonylite-admin")
        #expect(Set([one.adminPassword, one.leafPassword, one.routePassword, one.clientPassword]).count == 4)
        // The routes' CA key: the same for every node under one secret, another under another secret, and a
        // P-256 key openssl reads.
        let der = ClusterSecret.routeCAPrivateKeyDER(secret: first.secret)
        #expect(der == ClusterSecret.routeCAPrivateKeyDER(secret: second.secret) && der.count == 51)
        #expect(der != ClusterSecret.routeCAPrivateKeyDER(secret: Array(repeating: 65, count: 64)))
        try Data(der).write(to: URL(fileURLWithPath: directory.path + "/ca.der"))
        let read = try runCommand("/usr/bin/openssl", ["ec", "-inform", "DER", "-in", directory.path + "/ca.der", "-noout", "-text"])
        #expect(read.status == 0 && read.output.contains("prime256v1"), "\(read.output)")
    }

    @Test func aSecretOthersCanReadOrTooShortIsRefused() throws {
        let directory = try TemporaryDirectory()
        let path = directory.write("s", String(repeating: "a", count: 64))
        chmod(path, 0o644)
        let open = #expect(throws: ClusterSecretError.self) { try ClusterSecret.load(at: path) }
        #expect(open?.description.contains("chmod 600") == true)
        let short = directory.write("short", "abc\n")
        chmod(short, 0o600)
        #expect(throws: ClusterSecretError.self) { try ClusterSecret.load(at: short) }
        #expect(throws: ClusterSecretError.self) { try ClusterSecret.load(at: directory.path + "/missing") }
    }
}
