/// What `-schema-status-cluster` prints: the registry's entries grouped by schema hash. The reference
/// schema is the one most nodes have (a tie goes to the group with the lowest node id), so the mismatches
/// named are the minority — HarmonyLite compared against whichever entry its map yielded first.
public struct ClusterSchemaReport: Equatable, Sendable {
    public struct HashGroup: Equatable, Sendable {
        public var hash: String
        public var nodeIDs: [UInt64]
    }

    /// A key whose value could not be read as a node's schema state.
    public struct UnreadableEntry: Equatable, Sendable {
        public var key: String
        public var error: RegistryEntryError
    }

    public let nodes: [NodeSchemaState]
    public let unreadable: [UnreadableEntry]
    /// Largest first; the first is the reference.
    public let groups: [HashGroup]

    /// `entries`: every key of the bucket with its value's bytes.
    public init(entries: [(key: String, value: [UInt8])]) {
        var nodes: [NodeSchemaState] = []
        var unreadable: [UnreadableEntry] = []
        for (key, value) in entries.sorted(by: { $0.key < $1.key }) {
            do throws(RegistryEntryError) {
                let state = try NodeSchemaState.decode(value)
                guard SchemaRegistryBucket.nodeID(key: key) == state.nodeID else {
                    throw RegistryEntryError(.keyMismatch, "the entry says node_id \(state.nodeID)")
                }
                nodes.append(state)
            } catch {
                unreadable.append(UnreadableEntry(key: key, error: error))
            }
        }
        nodes.sort { $0.nodeID < $1.nodeID }
        var byHash: [String: [UInt64]] = [:]
        for node in nodes { byHash[node.schemaHash, default: []].append(node.nodeID) }
        self.nodes = nodes
        self.unreadable = unreadable
        groups = byHash.map { HashGroup(hash: $0.key, nodeIDs: $0.value) }.sorted {
            ($0.nodeIDs.count, $1.nodeIDs[0]) > ($1.nodeIDs.count, $0.nodeIDs[0])
        }
    }

    /// One schema on every node that has an entry, and no entry unreadable.
    public var isConsistent: Bool { groups.count <= 1 && unreadable.isEmpty }

    /// The nodes whose schema is not the reference's.
    public var mismatches: [NodeSchemaState] {
        guard let reference = groups.first else { return [] }
        return nodes.filter { $0.schemaHash != reference.hash }
    }

    public var text: String {
        var lines = ["Cluster Schema Status", "Total Nodes: \(nodes.count)", "Consistent: \(isConsistent ? "Yes" : "No")"]
        if nodes.isEmpty && unreadable.isEmpty {
            lines.append("No node has registered its schema (the registry is written by running nodes).")
        }
        if !groups.isEmpty {
            lines.append("")
            lines.append("Hash Groups:")
            for group in groups {
                lines.append("  \(group.hash.prefix(16)): \(group.nodeIDs.map { "Node \($0)" }.joined(separator: ", "))")
            }
        }
        if !nodes.isEmpty {
            lines.append("")
            lines.append("Node Details:")
            for node in nodes {
                lines.append(
                    "  Node \(node.nodeID): hash \(node.schemaHash), version \(node.version), updated \(RFC3339.format(node.updatedAt)), "
                        + "\(node.tables.count) tables")
            }
        }
        if let reference = groups.first, !mismatches.isEmpty {
            lines.append("")
            lines.append("Schema Mismatches:")
            for node in mismatches {
                lines.append(
                    "  Node \(node.nodeID): hash \(node.schemaHash.prefix(16)), expected \(reference.hash.prefix(16)) (\(reference.nodeIDs.count) of \(nodes.count) nodes)"
                )
            }
        }
        if !unreadable.isEmpty {
            lines.append("")
            lines.append("Unreadable Entries:")
            for entry in unreadable { lines.append("  \(entry.key): \(entry.error)") }
        }
        return lines.joined(separator: "\n")
    }
}
