import Foundation

/// What travels with a snapshot file: where in every stream its data stands, what it is, and how to
/// check it arrived whole.
public struct SnapshotMetadata: Codable, Equatable, Sendable {
    public static let currentFormat = 1

    public var format: Int
    /// Stream name → the last sequence whose changes the snapshot contains.
    public var cursor: [String: UInt64]
    /// HarmonyLite's schema hash of the replicated tables.
    public var schemaHash: String
    /// SHA-256 of the file, lowercase hex.
    public var sha256: String
    public var size: Int64
    public var nodeID: UInt64
    /// Milliseconds since 1970.
    public var createdAt: Int64

    public init(cursor: [String: UInt64], schemaHash: String, sha256: String, size: Int64, nodeID: UInt64, createdAt: Int64) {
        format = Self.currentFormat
        self.cursor = cursor
        self.schemaHash = schemaHash
        self.sha256 = sha256
        self.size = size
        self.nodeID = nodeID
        self.createdAt = createdAt
    }

    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(self)) ?? Data())
    }

    public init(decoding bytes: [UInt8]) throws(SnapshotError) {
        do {
            self = try JSONDecoder().decode(Self.self, from: Data(bytes))
        } catch {
            throw SnapshotError("the snapshot's metadata cannot be read: \(error)")
        }
        guard format == Self.currentFormat else { throw SnapshotError("the snapshot has format \(format); this version reads format \(Self.currentFormat)") }
    }
}

public struct SnapshotError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
