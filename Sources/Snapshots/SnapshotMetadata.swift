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
    /// HMAC-SHA256 (64 lowercase hex digits) of every other field (`signedBytes`) under the cluster's
    /// snapshot signing key; nil in snapshots saved by versions that did not sign (refused by default).
    public var signature: String?

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

    /// The most bytes of metadata a node reads: a cursor for thousands of streams fits many times over.
    public static let maximumEncodedSize = 256 * 1024
    /// The largest stream sequence a cursor may name: JetStream's sequences are far below it, and a cursor
    /// this size still leaves room for `+ 1` everywhere it is used.
    public static let maximumSequence = UInt64(Int64.max)

    /// Decodes untrusted bytes (a store, or whoever can write to it): anything malformed, out of range or
    /// oversized is a `SnapshotError` naming the field, never a crash later.
    public init(decoding bytes: [UInt8]) throws(SnapshotError) {
        guard bytes.count <= Self.maximumEncodedSize else {
            throw SnapshotError(.refused, "the snapshot's metadata is \(bytes.count) bytes, above the \(Self.maximumEncodedSize) limit")
        }
        do {
            self = try JSONDecoder().decode(Self.self, from: Data(bytes))
        } catch {
            throw SnapshotError(.refused, "the snapshot's metadata cannot be read: \(String(describing: error).prefix(300))")
        }
        guard Self.readableFormats.contains(format) else {
            throw SnapshotError(
                .refused, "the snapshot has format \(format); this version reads formats \(Self.readableFormats.lowerBound)…\(Self.readableFormats.upperBound)")
        }
        try validate()
    }

    private func validate() throws(SnapshotError) {
        func refuse(_ what: String) -> SnapshotError { SnapshotError(.refused, "the snapshot's metadata is refused: \(what)") }
        for (stream, sequence) in cursor {
            guard !stream.isEmpty, stream.utf8.count <= 255, stream.utf8.allSatisfy(Self.isStreamNameByte) else {
                throw refuse("cursor names a stream \"\(stream.prefix(64))\" that is not a JetStream stream name")
            }
            guard sequence <= Self.maximumSequence else { throw refuse("cursor of \(stream) is \(sequence), above \(Self.maximumSequence)") }
        }
        guard size >= 0 else { throw refuse("size is \(size)") }
        guard sha256.utf8.count == 64, sha256.utf8.allSatisfy(Self.isLowercaseHex) else { throw refuse("sha256 is not 64 lowercase hex digits") }
        guard schemaHash.utf8.count <= 128, schemaHash.utf8.allSatisfy(Self.isLowercaseHex) else { throw refuse("schemaHash is not a hex hash") }
        // Year 0 to 9999: `createdAt` names the snapshot's files in the directory stores.
        guard (0...253_402_300_799_999).contains(createdAt) else { throw refuse("createdAt is \(createdAt)") }
        if let signature, signature.utf8.count > 128 { throw refuse("signature is \(signature.utf8.count) characters long") }
    }

    private static func isLowercaseHex(_ byte: UInt8) -> Bool { (48...57).contains(byte) || (97...102).contains(byte) }
    /// Printable ASCII without space, `.`, `*`, `>`, `/`, `\\`: what JetStream allows in a stream name.
    private static func isStreamNameByte(_ byte: UInt8) -> Bool { byte > 32 && byte < 127 && !".*>/\\".utf8.contains(byte) }
}

/// A snapshot that cannot be made, moved or used, with what kind of problem it is: the configuration (fix the
/// settings), the snapshot itself (refused: it stays unused, another is looked for), its transfer (try again)
/// or local storage (disk, files).
public struct SnapshotError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Equatable, Sendable {
        /// The store's settings cannot work (an unknown store, a URL of the wrong scheme, a missing setting).
        case configuration
        /// The snapshot is not one this node may use: unreadable or oversized metadata, another format, not a
        /// HarmonyLite snapshot, a failed integrity check.
        case refused
        /// The store answered with an error, or the object changed while it was read.
        case transfer
        /// A local file cannot be read.
        case storage
        /// There is no room for the download on the database's filesystem.
        case noSpace
        /// Not now: the live database holds local writes whose stamps are not settled yet (an application
        /// clock ahead of the node's); a later attempt succeeds.
        case unsettled
    }

    public var kind: Kind
    public var description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
