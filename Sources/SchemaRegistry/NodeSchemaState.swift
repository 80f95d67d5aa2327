import Foundation

/// One node's entry in the schema registry (KV bucket `harmonylite-schema-registry`, key `node-<id>`), in
/// HarmonyLite's JSON: `node_id`, `schema_hash`, `previous_hash` (left out when empty),
/// `harmonylite_version`, `updated_at` (RFC 3339), plus `tables`, the replicated tables by name.
public struct NodeSchemaState: Equatable, Sendable {
    public var nodeID: UInt64
    public var schemaHash: String
    public var previousHash: String?
    public var version: String
    public var updatedAt: Date
    public var tables: [String]

    public init(nodeID: UInt64, schemaHash: String, previousHash: String?, version: String, updatedAt: Date, tables: [String]) {
        self.nodeID = nodeID
        self.schemaHash = schemaHash
        self.previousHash = previousHash
        self.version = version
        self.updatedAt = updatedAt
        self.tables = tables
    }

    /// Bounds on what is read back: an entry is written by a node, but read as untrusted bytes.
    public enum Limits {
        public static let entryBytes = 256 * 1024
        public static let tables = 10_000
        public static let tableNameBytes = 1024
        public static let versionBytes = 128
    }

    public func encoded() -> [UInt8] {
        let json = JSONState(
            node_id: nodeID, schema_hash: schemaHash, previous_hash: previousHash.flatMap { $0.isEmpty ? nil : $0 },
            harmonylite_version: version, updated_at: RFC3339.format(updatedAt), tables: tables
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Strings, integers and arrays of strings always encode.
        return Array((try? encoder.encode(json)) ?? Data())
    }

    /// Decodes an entry read from the bucket: every field checked, nothing trusted.
    public static func decode(_ bytes: [UInt8]) throws(RegistryEntryError) -> NodeSchemaState {
        guard bytes.count <= Limits.entryBytes else {
            throw RegistryEntryError(.tooLarge, "\(bytes.count) bytes (at most \(Limits.entryBytes))")
        }
        let json: JSONState
        do {
            json = try JSONDecoder().decode(JSONState.self, from: Data(bytes))
        } catch {
            throw RegistryEntryError(.notJSON, "not a schema state in JSON")
        }
        guard SchemaHashText.isValid(json.schema_hash) else { throw RegistryEntryError(.invalidField, "schema_hash is not 64 hex digits") }
        if let previous = json.previous_hash, !previous.isEmpty, !SchemaHashText.isValid(previous) {
            throw RegistryEntryError(.invalidField, "previous_hash is not 64 hex digits")
        }
        guard json.harmonylite_version.utf8.count <= Limits.versionBytes else {
            throw RegistryEntryError(.invalidField, "harmonylite_version is longer than \(Limits.versionBytes) bytes")
        }
        guard let updatedAt = RFC3339.parse(json.updated_at) else { throw RegistryEntryError(.invalidField, "updated_at is not an RFC 3339 time") }
        let tables = json.tables ?? []
        guard tables.count <= Limits.tables, tables.allSatisfy({ $0.utf8.count <= Limits.tableNameBytes }) else {
            throw RegistryEntryError(.invalidField, "tables: more than \(Limits.tables) names or a name over \(Limits.tableNameBytes) bytes")
        }
        return NodeSchemaState(
            nodeID: json.node_id, schemaHash: json.schema_hash,
            previousHash: json.previous_hash.flatMap { $0.isEmpty ? nil : $0 },
            version: json.harmonylite_version, updatedAt: updatedAt, tables: tables)
    }

    /// The wire form (HarmonyLite's field names); `tables` is optional so HarmonyLite's entries read too.
    private struct JSONState: Codable {
        var node_id: UInt64
        var schema_hash: String
        var previous_hash: String?
        var harmonylite_version: String
        var updated_at: String
        var tables: [String]?
    }
}

/// Why a registry entry was refused.
public struct RegistryEntryError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        case tooLarge
        case notJSON
        case invalidField
        /// The entry's `node_id` is not the node its key names.
        case keyMismatch
    }

    public var kind: Kind
    public var detail: String

    public init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    public var description: String { detail }
}

enum SchemaHashText {
    static func isValid(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}

/// RFC 3339 times in UTC, with or without fractional seconds (HarmonyLite's Go writes either).
enum RFC3339 {
    static func format(_ date: Date) -> String {
        Date.ISO8601FormatStyle(includingFractionalSeconds: false, timeZone: TimeZone(identifier: "UTC")!).format(date)
    }

    static func parse(_ text: String) -> Date? {
        guard text.utf8.count <= 64 else { return nil }
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: false).parse(text) { return date }
        return try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)
    }
}
