import Digests
import Logs
import NodeNATS

/// The key that signs and checks snapshots: HMAC-SHA256 of the label `harmonylite snapshot signing` under
/// the cluster secret (`ClusterSecret.snapshotSigningKey`), so every node of one cluster holds it and
/// nothing that can only write the snapshot store does.
public struct SnapshotSigningKey: Sendable, Equatable {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// From 64 hex digits (how it travels in a worker's configuration); nil when malformed.
    public init?(hex text: String) {
        let digits = Array(text.utf8)
        guard digits.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        var index = 0
        while index < digits.count {
            guard let high = Self.nibble(digits[index]), let low = Self.nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        self.bytes = bytes
    }

    public var hex: String { bytes.map(Self.hexByte).joined() }

    func mac(_ message: [UInt8]) -> [UInt8] { hmacSHA256(key: bytes, message) }

    static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case 48...57: digit - 48
        case 97...102: digit - 87
        default: nil
        }
    }

    static func hexByte(_ byte: UInt8) -> String { String(byte >> 4, radix: 16) + String(byte & 0xF, radix: 16) }
}

/// Why a snapshot is not restored: what it claims cannot be trusted, or what it carries may not enter the
/// database. The node does not restore it, and looks for another later (`SnapshotPlanner`).
public struct SnapshotRefusal: Error, CustomStringConvertible, Sendable {
    public enum Kind: Equatable, Sendable {
        /// No signature: saved by a version before 0.9 signing, or by whoever can write the store.
        case unsigned
        /// A signature that does not match: tampered metadata, another cluster's secret, or a truncated one.
        case badSignature
        /// The file does not match its (signed) metadata: size or SHA-256.
        case contentMismatch
        /// A row clock holds a stamp beyond now + `max_clock_offset` (`SnapshotStampCheck`): even a signed
        /// snapshot from a node whose clock runs ahead would pin rows.
        case stampBeyondClockBound
    }

    public var kind: Kind
    public var description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

extension SnapshotMetadata {
    /// The bytes the signature covers: every field but the signature, each as `<length>:<bytes>` in a fixed
    /// order (no JSON re-encoding to agree on; a stream name may hold any byte JetStream allows, `:` and `,`
    /// included, and cannot run into the next field).
    public var signedBytes: [UInt8] {
        var out = Array("harmonylite snapshot metadata 1\n".utf8)
        func field(_ text: String) {
            out += Array("\(text.utf8.count):".utf8)
            out += Array(text.utf8)
        }
        field(String(format))
        field(String(nodeID))
        field(String(createdAt))
        field(String(size))
        field(sha256)
        field(schemaHash)
        field(String(cursor.count))
        for (stream, sequence) in cursor.sorted(by: { $0.key < $1.key }) {
            field(stream)
            field(String(sequence))
        }
        if let streams {
            field(String(streams.count))
            for (stream, created) in streams.sorted(by: { $0.key < $1.key }) {
                field(stream)
                field(String(created))
            }
        } else {
            field("none")
        }
        return out
    }

    /// Signs the metadata with `key` (replacing any signature it had).
    public mutating func sign(with key: SnapshotSigningKey) {
        signature = key.mac(signedBytes).map(SnapshotSigningKey.hexByte).joined()
    }

    public func signed(with key: SnapshotSigningKey) -> SnapshotMetadata {
        var copy = self
        copy.sign(with: key)
        return copy
    }

    /// Throws a `SnapshotRefusal` unless the metadata carries `key`'s signature over its fields (compared in
    /// constant time). `acceptUnsigned` (`snapshot.accept_unsigned`, for an upgrade from a version that did
    /// not sign) lets a snapshot without any signature through; a wrong signature never passes.
    public func verifySignature(_ key: SnapshotSigningKey, acceptUnsigned: Bool = false) throws(SnapshotRefusal) {
        guard let signature else {
            if acceptUnsigned { return }
            throw SnapshotRefusal(
                .unsigned,
                "the snapshot of node \(nodeID) taken at \(LineLogHandler.rfc3339(unixMilliseconds: createdAt)) carries no signature (saved by a version "
                    + "that did not sign snapshots, or planted by someone who can write the store): refused; a node of this version saves a "
                    + "signed one at its next snapshot (set snapshot.accept_unsigned = true only for an upgrade from an unsigning version)")
        }
        let expected = key.mac(signedBytes)
        let given = Array(signature.utf8)
        var difference: UInt8 = given.count == 64 ? 0 : 1
        for index in 0..<32 {
            let high = index * 2 < given.count ? SnapshotSigningKey.nibble(given[index * 2]) : nil
            let low = index * 2 + 1 < given.count ? SnapshotSigningKey.nibble(given[index * 2 + 1]) : nil
            guard let high, let low else {
                difference |= 1
                continue
            }
            difference |= (high << 4 | low) ^ expected[index]
        }
        guard difference == 0 else {
            throw SnapshotRefusal(
                .badSignature,
                "the snapshot of node \(nodeID) taken at \(LineLogHandler.rfc3339(unixMilliseconds: createdAt)) has a signature that does not match "
                    + "its metadata under this cluster's secret (its metadata or file was altered, or it was signed with another cluster "
                    + "secret): refused, the database is unchanged")
        }
    }
}
