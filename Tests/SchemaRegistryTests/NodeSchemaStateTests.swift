import Foundation
import Testing

@testable import SchemaRegistry

@Suite struct NodeSchemaStateTests {
    static let hashA = String(repeating: "a", count: 64)
    static let hashB = String(repeating: "b", count: 64)

    static func state(_ nodeID: UInt64, _ hash: String = hashA, previous: String? = nil) -> NodeSchemaState {
        NodeSchemaState(
            nodeID: nodeID, schemaHash: hash, previousHash: previous, version: "0.1.0",
            updatedAt: Date(timeIntervalSince1970: 1_800_000_000), tables: ["items", "users"])
    }

    @Test func roundTrips() throws {
        let state = Self.state(3, previous: Self.hashB)
        #expect(try NodeSchemaState.decode(state.encoded()) == state)
    }

    @Test func writesHarmonyLitesFieldNames() throws {
        let text = String(decoding: Self.state(1).encoded(), as: UTF8.self)
        #expect(text.contains("\"node_id\":1"))
        #expect(text.contains("\"schema_hash\":\"\(Self.hashA)\""))
        #expect(text.contains("\"harmonylite_version\":\"0.1.0\""))
        #expect(text.contains("\"updated_at\":\"2027-01-15T08:00:00Z\""))
        #expect(!text.contains("previous_hash"), "left out when empty, as HarmonyLite's omitempty")
    }

    @Test func readsHarmonyLitesEntriesWithoutTablesAndWithFractionalSeconds() throws {
        let json = #"{"node_id":2,"schema_hash":"\#(Self.hashA)","harmonylite_version":"v0.9.1","updated_at":"2025-03-01T10:00:00.123456Z"}"#
        let state = try NodeSchemaState.decode(Array(json.utf8))
        #expect(state.nodeID == 2 && state.tables.isEmpty && state.previousHash == nil)
    }

    @Test(arguments: [
        ("", RegistryEntryError.Kind.notJSON),
        ("\u{0}\u{1}garbage", .notJSON),
        ("[1,2,3]", .notJSON),
        (#"{"node_id":-1,"schema_hash":"x","harmonylite_version":"","updated_at":""}"#, .notJSON),
        (#"{"node_id":1,"schema_hash":"abc","harmonylite_version":"","updated_at":"2025-03-01T10:00:00Z"}"#, .invalidField),
        (#"{"node_id":1,"schema_hash":"\#(String(repeating: "A", count: 64))","harmonylite_version":"","updated_at":"2025-03-01T10:00:00Z"}"#, .invalidField),
        (#"{"node_id":1,"schema_hash":"\#(String(repeating: "a", count: 64))","harmonylite_version":"","updated_at":"yesterday"}"#, .invalidField),
        (
            #"{"node_id":1,"schema_hash":"\#(String(repeating: "a", count: 64))","previous_hash":"zz","harmonylite_version":"","updated_at":"2025-03-01T10:00:00Z"}"#,
            .invalidField
        ),
    ])
    func refusesGarbage(json: String, kind: RegistryEntryError.Kind) {
        #expect(throws: RegistryEntryError.self) { try NodeSchemaState.decode(Array(json.utf8)) }
        do {
            _ = try NodeSchemaState.decode(Array(json.utf8))
        } catch {
            #expect(error.kind == kind, "\(json): \(error)")
        }
    }

    @Test func refusesOversizedEntriesAndFields() {
        let huge = [UInt8](repeating: UInt8(ascii: " "), count: NodeSchemaState.Limits.entryBytes + 1)
        #expect(kind(of: huge) == .tooLarge)
        var longVersion = Self.state(1)
        longVersion.version = String(repeating: "v", count: NodeSchemaState.Limits.versionBytes + 1)
        #expect(kind(of: longVersion.encoded()) == .invalidField)
        var longName = Self.state(1)
        longName.tables = [String(repeating: "t", count: NodeSchemaState.Limits.tableNameBytes + 1)]
        #expect(kind(of: longName.encoded()) == .invalidField)
    }

    private func kind(of bytes: [UInt8]) -> RegistryEntryError.Kind? {
        do {
            _ = try NodeSchemaState.decode(bytes)
            return nil
        } catch {
            return error.kind
        }
    }

    @Test func keysNameNodes() {
        #expect(SchemaRegistryBucket.key(nodeID: 7) == "node-7")
        #expect(SchemaRegistryBucket.nodeID(key: "node-7") == 7)
        #expect(SchemaRegistryBucket.nodeID(key: "node-x") == nil)
        #expect(SchemaRegistryBucket.nodeID(key: "other-7") == nil)
    }
}
