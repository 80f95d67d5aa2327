import SQLiteKit

/// The tables a database replicates, by name, and their schema hash: what the schema registry records.
public struct ReplicatedSchema: Equatable, Sendable {
    public var hash: String
    public var tables: [String]

    public static func read(_ database: SQLiteDatabase) throws(SQLiteError) -> ReplicatedSchema {
        let replicated = try TableCatalog.read(database).replicated
        return ReplicatedSchema(hash: SchemaHash.of(replicated), tables: replicated.map(\.name).sorted())
    }
}
