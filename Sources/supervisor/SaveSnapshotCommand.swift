import Foundation
import HarmonyConfig
import NATSClient
import Signals
import Snapshots

/// `harmonylite -save-snapshot`: takes a snapshot of the database, uploads it to `snapshot.store`, exits.
///
/// It reaches NATS the way the node does: `nats.urls`, or — with the embedded server — the server of the
/// node running for this database (its client port is read from the ports file nats-server writes into
/// the run directory). So with the embedded default it needs the node running; it says so when it is not.
/// It does not wait for the snapshot lease: an operator's explicit request wins, and the store keeps the
/// newest complete upload either way.
enum SaveSnapshotCommand {
    static func run(_ config: Configuration) throws -> String {
        guard config.snapshot.enabled else { throw SaveSnapshotError("snapshot.enabled is false in the configuration") }
        var config = config
        config.natsClientURLs = config.nats.urls.isEmpty ? [try embeddedServerURL(config)] : config.nats.urls
        let settings = try ConnectionSettings(configuration: config, name: config.nodeName + "-save-snapshot", heartbeatTimeout: 10000)
        let connection: NATSConnection
        do {
            connection = try NATSConnection.connect(settings)
        } catch {
            throw SaveSnapshotError("cannot reach NATS at \(config.natsClientURLs.map(URLRedaction.redact).joined(separator: ", ")): \(error)")
        }
        let store = try SnapshotStores.open(config, connection: connection)
        let (metadata, timing) = try SnapshotTransfers.save(database: config.dbPath, nodeID: config.nodeID, store: store) { line in
            FileHandle.standardError.write(Data("harmonylite: \(line)\n".utf8))
        }
        let megabytes = Double(metadata.size) / 1_048_576
        return "saved a snapshot of \(config.dbPath) to the \(config.snapshot.store) store: "
            + String(format: "%.1f MB, copy %.2f s, upload %.2f s (%.1f MB/s), ", megabytes, timing.local, timing.transfer, megabytes / max(timing.transfer, 0.001))
            + "cursor \(metadata.cursor.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))"
    }

    /// The client URL of the embedded server of the node running for this database.
    private static func embeddedServerURL(_ config: Configuration) throws -> String {
        let directory = try RunDirectoryLayout.path(for: config)
        for pid in NATSPortsFile.serverPIDs(runDirectory: directory) where kill(pid, 0) == 0 {
            if let port = NATSPortsFile.clientPort(runDirectory: directory, pid: pid) { return "nats://127.0.0.1:\(port)" }
        }
        throw SaveSnapshotError("no running node for \(config.dbPath) (nats.urls is empty, so the snapshot is uploaded through the node's embedded NATS server): start the node, then run -save-snapshot again")
    }
}

struct SaveSnapshotError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
