import ChangeLog
import HarmonyConfig
import Logs
import NATSClient
import NodeNATS
import SQLiteKit
import SchemaRegistry

/// `-schema-status`: the local database's replicated tables and schema hash, computed now (HarmonyLite
/// always printed "Not initialized"). `-schema-status-cluster`: every node's entry in the schema registry,
/// grouped by hash, with the nodes whose schema differs from most nodes'.
enum SchemaStatusCommands {
    static func local(_ config: Configuration) throws -> String {
        let schema = try ReplicatedSchema.read(try SQLiteDatabase(readOnlyPath: config.dbPath))
        return LocalSchemaReport(nodeID: config.nodeID, version: HarmonyLiteVersion.number, schemaHash: schema.hash, tables: schema.tables).text
    }

    static func cluster(_ config: Configuration) throws -> String {
        var config = config
        try RunningNodeNATS.prepare(&config, command: "-schema-status-cluster", purpose: "the registry is read through")
        let settings = try ConnectionSettings(configuration: config, name: config.nodeName + "-schema-status", heartbeatTimeout: 10000)
        let connection: NATSConnection
        do {
            connection = try NATSConnection.connect(settings)
        } catch {
            throw CommandError(.unreachable, "cannot reach NATS at \(config.natsClientURLs.map(URLRedaction.redact).joined(separator: ", ")): \(error)")
        }
        guard let bucket = try KeyValueBucket.existing(connection: connection, name: SchemaRegistryBucket.name) else {
            return ClusterSchemaReport(entries: []).text
        }
        var entries: [(key: String, value: [UInt8])] = []
        for key in try bucket.keys() {
            if let value = try bucket.value(key) { entries.append((key, value)) }
        }
        return ClusterSchemaReport(entries: entries).text
    }
}
