import Digests
import HarmonyConfig
import NATSClient
import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// The embedded servers' shared secret: a file of 64 hex digits (32 random bytes), mode 0600, created at a
/// node's first start when missing and copied by the operator to every other node of the cluster. Every
/// credential is derived from it with HMAC-SHA256 and a label, so nothing else needs distributing:
/// the routes' password (the same on every server), the administrator's (the same on every server; the
/// supervisor's set-up of streams and buckets uses it), the leaf nodes' (the same everywhere) and each node's own client password (only that
/// node's server lists it). Rotating it means replacing the file on every node and restarting them.
public enum ClusterSecret {
    public static let routeUser = "harmonylite-route"
    public static let adminUser = "harmonylite-admin"
    public static let leafUser = "harmonylite-leaf"
    static let maximumFileSize = 4096

    /// The secret at `path`, created when missing; `created` says whether this call wrote it. Two nodes
    /// starting at once on one machine agree: the file appears whole or not at all (link of a complete
    /// temporary file), and whoever loses the race reads the winner's.
    public static func loadOrCreate(at path: String) throws(ClusterSecretError) -> (secret: [UInt8], created: Bool) {
        if let secret = try load(at: path, missingIsNil: true) { return (secret, false) }
        var generator = SystemRandomNumberGenerator()
        let text = (0..<32).map { _ in hex(UInt8.random(in: 0...255, using: &generator)) }.joined() + "\n"
        let temporary = path + ".new-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ClusterSecretError(path: path, "cannot create it: \(SystemError.reason(errno))") }
        let bytes = Array(text.utf8)
        let written = write(fd, bytes, bytes.count)
        let synced = fsync(fd)
        close(fd)
        defer { unlink(temporary) }
        guard written == bytes.count, synced == 0 else { throw ClusterSecretError(path: path, "cannot write it: \(SystemError.reason(errno))") }
        if link(temporary, path) != 0 {
            guard errno == EEXIST, let secret = try load(at: path, missingIsNil: true) else {
                throw ClusterSecretError(path: path, "cannot create it: \(SystemError.reason(errno))")
            }
            return (secret, false)
        }
        return (try load(at: path, missingIsNil: false)!, true)
    }

    /// The secret at `path`: a regular file of this user, readable by no one else, with at least 32
    /// characters of text (whitespace around it ignored). `asRoot`: an operator's one-shot command run
    /// with sudo may read the node user's file (a node itself never trusts another user's secret: in a
    /// shared directory that user would know it).
    public static func load(at path: String, asRoot: Bool = false) throws(ClusterSecretError) -> [UInt8] {
        try load(at: path, missingIsNil: false, asRoot: asRoot)!
    }

    private static func load(at path: String, missingIsNil: Bool, asRoot: Bool = false) throws(ClusterSecretError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            if errno == ENOENT && missingIsNil { return nil }
            throw ClusterSecretError(path: path, "cannot read it: \(SystemError.reason(errno))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { throw ClusterSecretError(path: path, "it is not a regular file") }
        guard info.st_uid == geteuid() || (asRoot && geteuid() == 0) else {
            throw ClusterSecretError(path: path, "it belongs to uid \(info.st_uid), not to this user (\(geteuid()))")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw ClusterSecretError(path: path, "its mode is \(String(info.st_mode & 0o777, radix: 8)): others can read it; chmod 600 it")
        }
        var buffer = [UInt8](repeating: 0, count: maximumFileSize + 1)
        let count = read(fd, &buffer, buffer.count)
        guard count >= 0, count <= maximumFileSize else { throw ClusterSecretError(path: path, "it is larger than \(maximumFileSize) bytes") }
        let text = buffer[0..<count].drop { isSpace($0) }.reversed().drop { isSpace($0) }.reversed()
        guard text.count >= 32 else { throw ClusterSecretError(path: path, "it holds \(text.count) characters; a cluster secret has at least 32") }
        return Array(text)
    }

    /// The credentials of node `nodeID` under `secret`.
    public static func credentials(secret: [UInt8], nodeID: UInt64) -> EmbeddedCredentials {
        func derive(_ label: String) -> String { hmacSHA256(key: secret, Array(label.utf8)).map(hex).joined() }
        let user = "harmonylite-node-\(nodeID)"
        return EmbeddedCredentials(
            clientUser: user, clientPassword: derive("harmonylite client " + user),
            routeUser: routeUser, routePassword: derive("harmonylite route"),
            adminUser: adminUser, adminPassword: derive("harmonylite admin"),
            leafUser: leafUser, leafPassword: derive("harmonylite leaf"))
    }

    /// The order of the P-256 group: a private key is a number in 1..<n.
    static let p256Order: [UInt8] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
    ]

    /// The routes' certificate authority's P-256 private key under `secret`, as SEC1 DER (`openssl ec
    /// -inform DER` reads it and computes the public key): the same on every node, so each node signs its
    /// own route certificate at start and every node trusts the others'. The scalar is HMAC-SHA256 of a
    /// label and a counter, the first one in 1..<n (one try in 2^32 needs a second).
    public static func routeCAPrivateKeyDER(secret: [UInt8]) -> [UInt8] {
        var counter = 0
        while true {
            let scalar = hmacSHA256(key: secret, Array("harmonylite route ca \(counter)".utf8))
            if scalar.contains(where: { $0 != 0 }) && scalar.lexicographicallyPrecedes(p256Order) {
                // SEC1 ECPrivateKey { version 1, privateKey OCTET STRING (32), [0] namedCurve prime256v1 }
                return [0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20] + scalar + [0xA0, 0x0A, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
            }
            counter += 1
        }
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }
    static func hex(_ byte: UInt8) -> String { String(byte >> 4, radix: 16) + String(byte & 0xF, radix: 16) }
}

public struct ClusterSecretError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public init(path: String, _ reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "cluster secret \(path) (nats.cluster_secret_file): \(reason)" }
}
