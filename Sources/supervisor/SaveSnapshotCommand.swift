import ChangeEvents
import Foundation
import HarmonyConfig
import Logs
import NATSClient
import NodeNATS
import Signals
import Snapshots

/// `harmonylite -save-snapshot`: takes a snapshot of the database, uploads it to `snapshot.store`, exits.
///
/// It reaches NATS the way the node does (`RunningNodeNATS`): with the embedded default it needs the node
/// running, and says so when it is not.
/// It does not wait for the snapshot lease: an operator's explicit request wins, and the store keeps the
/// newest complete upload either way.
enum SaveSnapshotCommand {
    static func run(_ config: Configuration) throws -> String {
        guard config.snapshot.enabled else { throw CommandError(.configuration, "snapshot.enabled is false in the configuration") }
        var config = config
        try RunningNodeNATS.prepare(&config, command: "-save-snapshot", purpose: "the snapshot is uploaded through")
        try CommandSnapshotSigning.prepare(&config)
        guard let key = config.snapshotSigningKey.flatMap(SnapshotSigningKey.init(hex:)) else { throw CommandError(.configuration, "no snapshot signing key") }
        let settings = try ConnectionSettings(configuration: config, name: config.nodeName + "-save-snapshot", heartbeatTimeout: 10000)
        let connection: NATSConnection
        do {
            connection = try NATSConnection.connect(settings)
        } catch {
            throw CommandError(.unreachable, "cannot reach NATS at \(config.natsClientURLs.map(URLRedaction.redact).joined(separator: ", ")): \(error)")
        }
        let store = try SnapshotStores.open(config, connection: connection)
        let (metadata, timing) = try SnapshotTransfers.save(database: config.dbPath, nodeID: config.nodeID, store: store, key: key) { line in
            FileHandle.standardError.write(Data("harmonylite: \(line)\n".utf8))
        }
        return "saved a snapshot of \(config.dbPath) to the \(config.snapshot.store) store: \(ByteSize.text(metadata.size)), "
            + String(format: "copy %.2f s, upload %.2f s ", timing.local, timing.transfer) + "(\(ByteSize.rate(metadata.size, seconds: timing.transfer))), "
            + "cursor \(describeCursor(metadata.cursor))"
    }
}
