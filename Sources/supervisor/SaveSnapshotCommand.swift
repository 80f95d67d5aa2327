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
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for file in files where file.hasPrefix("nats-server_") && file.hasSuffix(".ports") {
            let pid = Int32(file.dropFirst("nats-server_".count).dropLast(".ports".count)) ?? 0
            guard pid > 0, kill(pid, 0) == 0,
                let data = FileManager.default.contents(atPath: directory + "/" + file),
                let ports = try? JSONDecoder().decode([String: [String]].self, from: data),
                let url = ports["nats"]?.first,
                let port = HostPort(parsing: url.split(separator: "/").last.map(String.init) ?? "")?.port
            else { continue }
            return "nats://127.0.0.1:\(port)"
        }
        throw SaveSnapshotError("no running node for \(config.dbPath) (nats.urls is empty, so the snapshot is uploaded through the node's embedded NATS server): start the node, then run -save-snapshot again")
    }
}

struct SaveSnapshotError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
