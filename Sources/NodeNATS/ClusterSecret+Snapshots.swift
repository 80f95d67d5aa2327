import Digests
import NATSClient

extension ClusterSecret {
    /// The label of the snapshot signing key: a purpose of its own, so the key is none of the passwords
    /// derived from the same secret (and knowing a node password tells nothing of it).
    static let snapshotSigningLabel = "harmonylite snapshot signing"

    /// The key snapshots' metadata is signed with (HMAC-SHA256), the same on every node of the cluster:
    /// HMAC-SHA256 of `snapshotSigningLabel` under the cluster secret, 64 lowercase hex digits.
    public static func snapshotSigningKey(secret: [UInt8]) -> String {
        hmacSHA256(key: secret, Array(snapshotSigningLabel.utf8)).map(hex).joined()
    }
}
