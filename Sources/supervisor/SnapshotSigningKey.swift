import HarmonyConfig
import Logging
import NATSClient
import NodeNATS

extension Supervisor {
    /// With `nats.urls` (no embedded server) the cluster secret signs snapshots only: it is read (created
    /// at the first start, like the embedded server's) when snapshots are on, and every node of the cluster
    /// needs the same file. Without it a node could neither sign its snapshots nor check anyone's.
    static func snapshotSigningKeyForExternalNATS(_ config: Configuration, logger: Logger) throws -> String? {
        guard config.snapshot.enabled else { return nil }
        let secret: (secret: [UInt8], created: Bool)
        do {
            secret = try ClusterSecret.loadOrCreate(at: config.clusterSecretPath)
        } catch {
            throw SupervisorError(.configuration, "\(error) (with nats.urls it signs and checks the snapshots)")
        }
        if secret.created {
            logger.warning(
                "created the cluster secret, which signs the snapshots: copy it to every other node of this cluster (same path, or nats.cluster_secret_file) before they start; snapshots signed with another secret are refused",
                metadata: ["path": "\(config.clusterSecretPath)", "mode": "0600"])
        }
        return ClusterSecret.snapshotSigningKey(secret: secret.secret)
    }
}

/// The one-shot `-save-snapshot` signs what it uploads with the node's key.
enum CommandSnapshotSigning {
    static func prepare(_ config: inout Configuration) throws(CommandError) {
        do {
            config.snapshotSigningKey = ClusterSecret.snapshotSigningKey(secret: try ClusterSecret.load(at: config.clusterSecretPath, asRoot: true))
        } catch {
            throw CommandError(.configuration, "\(error) (it signs the snapshot)")
        }
    }
}
