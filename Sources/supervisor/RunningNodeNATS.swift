import HarmonyConfig
import NATSClient
import NodeNATS
import Supervision

#if canImport(Glibc)
import Glibc
#endif

/// How a one-shot command (`-save-snapshot`, `-schema-status-cluster`) reaches NATS the way the node
/// does: `nats.urls`, or — with the embedded server — the server of the node running for this database
/// (its client port is read from the ports file nats-server writes into the run directory; the running
/// supervisor recorded that directory in its node lock, so it is found under systemd as from a shell).
enum RunningNodeNATS {
    /// Fills in `natsClientURLs` and, with the embedded server, this node's credentials from the cluster
    /// secret (the running node's server accepts no one else).
    static func prepare(_ config: inout Configuration, command: String, purpose: String) throws(CommandError) {
        config.natsClientURLs = try clientURLs(config, command: command, purpose: purpose)
        guard config.nats.isEmbedded else { return }
        do {
            config.embeddedCredentials = ClusterSecret.credentials(
                secret: try ClusterSecret.load(at: config.clusterSecretPath, asRoot: true), nodeID: config.nodeID)
        } catch {
            throw CommandError(.configuration, "\(error)")
        }
    }

    /// `purpose` ends the message when no node runs: "the snapshot is uploaded through …", say.
    static func clientURLs(_ config: Configuration, command: String, purpose: String) throws(CommandError) -> [String] {
        guard config.nats.urls.isEmpty else { return config.nats.urls }
        let directory: String
        do {
            directory = try NodeLock.recordedRunDirectory(for: config) ?? RunDirectoryLayout.path(for: config)
        } catch {
            throw CommandError(.notRunning, "cannot find the node's run directory: \(error)")
        }
        for pid in NATSPortsFile.serverPIDs(runDirectory: directory) where kill(pid, 0) == 0 {
            if let port = NATSPortsFile.clientPort(runDirectory: directory, pid: pid) { return [EmbeddedServerConfig.clientURL(config, port: port)] }
        }
        throw CommandError(
            .notRunning,
            "no running node for \(config.dbPath) (nats.urls is empty, so \(purpose) the node's embedded NATS server): "
                + "start the node, then run \(command) again")
    }
}

/// Why a one-shot command failed: printed after the command's name, exit status 1.
struct CommandError: Error, CustomStringConvertible {
    enum Kind: Equatable, Sendable {
        /// The configuration does not allow the command (snapshots off, no signing key, a bad setting).
        case configuration
        /// The command needs the running node (its embedded NATS server), and none runs.
        case notRunning
        /// NATS cannot be reached.
        case unreachable
    }

    var kind: Kind
    var description: String

    init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
