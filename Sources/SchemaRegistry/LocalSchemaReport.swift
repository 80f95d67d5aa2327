/// What `-schema-status` prints: the schema of this node's database as the registry would record it.
public struct LocalSchemaReport: Equatable, Sendable {
    public var nodeID: UInt64
    public var version: String
    public var schemaHash: String
    public var tables: [String]

    public init(nodeID: UInt64, version: String, schemaHash: String, tables: [String]) {
        self.nodeID = nodeID
        self.version = version
        self.schemaHash = schemaHash
        self.tables = tables
    }

    public var text: String {
        var lines = [
            "Local Schema Status", "Node ID: \(nodeID)", "Schema hash: \(schemaHash)", "HarmonyLite Version: \(version)",
            "Watched Tables: \(tables.count)",
        ]
        lines += tables.map { "  - \($0)" }
        return lines.joined(separator: "\n")
    }
}
