import Foundation

/// What travels with a snapshot file: where in every stream its data stands, what it is, and how to
/// check it arrived whole.
public struct SnapshotMetadata: Codable, Equatable, Sendable {
    /// 2: the file carries the row clocks (stamps and tombstones), and `streams` says which streams the
    /// cursor belongs to. 1 (still read): data only, every row without a stamp.
    public static let currentFormat = 2
    public static let readableFormats = 1...2

    public var format: Int
    /// Stream name → the last sequence whose changes the snapshot contains.
    public var cursor: [String: UInt64]
    /// Stream name → its identity (JetStream's creation time, ns since 1970) when `cursor` was read: a
    /// stream deleted and created again starts over at sequence 1, and the cursor means nothing in it.
    /// Nil in format 1, empty for streams never consumed.
    public var streams: [String: UInt64]?
    /// HarmonyLite's schema hash of the replicated tables.
    public var schemaHash: String
    /// SHA-256 of the file, lowercase hex.
    public var sha256: String
    public var size: Int64
    public var nodeID: UInt64
    /// Milliseconds since 1970.
    public var createdAt: Int64

    public init(cursor: [String: UInt64], streams: [String: UInt64] = [:], schemaHash: String, sha256: String, size: Int64, nodeID: UInt64, createdAt: Int64) {
        format = Self.currentFormat
        self.cursor = cursor
        self.streams = streams
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
        guard Self.readableFormats.contains(format) else {
            throw SnapshotError("the snapshot has format \(format); this version reads formats \(Self.readableFormats.lowerBound)…\(Self.readableFormats.upperBound)")
        }
    }
}

public struct SnapshotError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
