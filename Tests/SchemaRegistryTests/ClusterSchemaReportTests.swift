import Testing

@testable import SchemaRegistry

@Suite struct ClusterSchemaReportTests {
    typealias State = NodeSchemaStateTests

    static func entry(_ state: NodeSchemaState) -> (key: String, value: [UInt8]) {
        (SchemaRegistryBucket.key(nodeID: state.nodeID), state.encoded())
    }

    @Test func oneHashIsConsistent() {
        let report = ClusterSchemaReport(entries: [1, 2, 3].map { Self.entry(State.state($0)) })
        #expect(report.isConsistent && report.mismatches.isEmpty)
        #expect(report.text.hasPrefix("Cluster Schema Status\nTotal Nodes: 3\nConsistent: Yes\n"))
        #expect(report.text.contains("  aaaaaaaaaaaaaaaa: Node 1, Node 2, Node 3"))
        #expect(!report.text.contains("Schema Mismatches:"))
    }

    @Test func theMinorityIsTheMismatchWhateverTheOrder() {
        let entries = [Self.entry(State.state(3, State.hashB)), Self.entry(State.state(1)), Self.entry(State.state(2))]
        let report = ClusterSchemaReport(entries: entries)
        #expect(!report.isConsistent)
        #expect(report.mismatches.map(\.nodeID) == [3])
        #expect(report.text.contains("Consistent: No"))
        #expect(report.text.contains("Schema Mismatches:\n  Node 3: hash bbbbbbbbbbbbbbbb, expected aaaaaaaaaaaaaaaa (2 of 3 nodes)"))
    }

    @Test func aTieGoesToTheGroupWithTheLowestNodeID() {
        let report = ClusterSchemaReport(entries: [Self.entry(State.state(2, State.hashB)), Self.entry(State.state(1))])
        #expect(report.groups.first?.hash == State.hashA)
        #expect(report.mismatches.map(\.nodeID) == [2])
    }

    @Test func aBadEntryIsReportedNotTrusted() {
        let wrongNode = (key: "node-9", value: State.state(1).encoded())
        let report = ClusterSchemaReport(entries: [Self.entry(State.state(1)), ("node-2", Array("garbage".utf8)), wrongNode])
        #expect(report.nodes.map(\.nodeID) == [1])
        #expect(report.unreadable.map(\.key) == ["node-2", "node-9"])
        #expect(report.unreadable.map(\.error.kind) == [.notJSON, .keyMismatch])
        #expect(!report.isConsistent, "an entry that cannot be read is a schema nobody can vouch for")
        #expect(report.text.contains("Unreadable Entries:\n  node-2: not a schema state in JSON\n  node-9: the entry says node_id 1"))
    }

    @Test func anEmptyRegistrySaysSo() {
        let report = ClusterSchemaReport(entries: [])
        #expect(report.text.contains("Total Nodes: 0"))
        #expect(report.text.contains("No node has registered its schema"))
    }

    @Test func localStatusPrintsTheHashAndTables() {
        let text = LocalSchemaReport(nodeID: 2, version: "0.1.0", schemaHash: State.hashA, tables: ["items", "users"]).text
        #expect(text == "Local Schema Status\nNode ID: 2\nSchema hash: \(State.hashA)\nHarmonyLite Version: 0.1.0\nWatched Tables: 2\n  - items\n  - users")
    }
}
