import Foundation
import NodeNATS
import TestSupport
import Testing

@testable import ChangeLog
@testable import NATSClient
@testable import SQLiteKit
@testable import Snapshots

/// The snapshot metadata's HMAC-SHA256 under the key derived from the cluster secret: every field is
/// covered, and a wrong key, a truncated or altered signature, or none at all is refused.
@Suite struct SnapshotSignatureTests {
    static let key = SnapshotSigningKey(hex: ClusterSecret.snapshotSigningKey(secret: Array("a cluster secret of at least 32 characters".utf8)))!
    static let otherKey = SnapshotSigningKey(hex: ClusterSecret.snapshotSigningKey(secret: Array("another cluster's secret, 32 characters+".utf8)))!

    static func metadata() -> SnapshotMetadata {
        SnapshotMetadata(
            cursor: ["harmonylite-changes-1": 41, "harmonylite-changes-2": 7], streams: ["harmonylite-changes-1": 777],
            schemaHash: "ab12", sha256: String(repeating: "c", count: 64), size: 4096, nodeID: 2, createdAt: 1_763_900_000_000)
    }

    static func refusal(_ body: () throws(SnapshotRefusal) -> Void) -> SnapshotRefusal.Kind? {
        do {
            try body()
            return nil
        } catch {
            return error.kind
        }
    }

    @Test func theKeyHasAPurposeOfItsOwn() {
        let secret = Array("a cluster secret of at least 32 characters".utf8)
        let key = ClusterSecret.snapshotSigningKey(secret: secret)
        let credentials = ClusterSecret.credentials(secret: secret, nodeID: 1)
        #expect(key.count == 64)
        #expect(key != credentials.clientPassword && key != credentials.routePassword)
        #expect(SnapshotSigningKey(hex: key)?.hex == key)
        #expect(SnapshotSigningKey(hex: String(key.dropLast())) == nil && SnapshotSigningKey(hex: "zz" + key.dropFirst(2)) == nil)
    }

    @Test func aSignedSnapshotIsAcceptedAndSurvivesTheStore() throws {
        let signed = Self.metadata().signed(with: Self.key)
        #expect(Self.refusal { () throws(SnapshotRefusal) in try signed.verifySignature(Self.key) } == nil)
        let read = try SnapshotMetadata(decoding: signed.encoded())
        #expect(read == signed)
        #expect(Self.refusal { () throws(SnapshotRefusal) in try read.verifySignature(Self.key) } == nil)
    }

    @Test func everyTamperedFieldIsRefused() {
        let signed = Self.metadata().signed(with: Self.key)
        let tamperings: [(String, (inout SnapshotMetadata) -> Void)] = [
            ("cursor", { $0.cursor["harmonylite-changes-1"] = 42 }),
            ("an added cursor entry", { $0.cursor["harmonylite-changes-3"] = 0 }),
            ("a renamed stream", { $0.cursor = ["harmonylite-changes-1": 41, "harmonylite-changes-3": 7] }),
            ("streams", { $0.streams = ["harmonylite-changes-1": 778] }),
            ("streams dropped", { $0.streams = nil }),
            ("sha256", { $0.sha256 = String(repeating: "d", count: 64) }),
            ("size", { $0.size = 4097 }),
            ("schemaHash", { $0.schemaHash = "ab13" }),
            ("nodeID", { $0.nodeID = 3 }),
            ("createdAt", { $0.createdAt += 1 }),
            ("format", { $0.format = 1 }),
        ]
        for (field, tamper) in tamperings {
            var forged = signed
            tamper(&forged)
            #expect(Self.refusal { () throws(SnapshotRefusal) in try forged.verifySignature(Self.key) } == .badSignature, "\(field)")
        }
    }

    @Test func aWrongKeyATruncatedOrAlteredSignatureAndNoneAreRefused() {
        let signed = Self.metadata().signed(with: Self.key)
        #expect(Self.refusal { () throws(SnapshotRefusal) in try signed.verifySignature(Self.otherKey) } == .badSignature)
        var truncated = signed
        truncated.signature = String(signed.signature!.prefix(32))
        #expect(Self.refusal { () throws(SnapshotRefusal) in try truncated.verifySignature(Self.key) } == .badSignature)
        truncated.signature = ""
        #expect(Self.refusal { () throws(SnapshotRefusal) in try truncated.verifySignature(Self.key) } == .badSignature)
        var altered = signed
        let last = signed.signature!.last == "0" ? "1" : "0"
        altered.signature = String(signed.signature!.dropLast()) + last
        #expect(Self.refusal { () throws(SnapshotRefusal) in try altered.verifySignature(Self.key) } == .badSignature)
        var longer = signed
        longer.signature = signed.signature! + "00"
        #expect(Self.refusal { () throws(SnapshotRefusal) in try longer.verifySignature(Self.key) } == .badSignature)
        var uppercase = signed
        uppercase.signature = signed.signature!.uppercased()
        if uppercase.signature != signed.signature {
            #expect(Self.refusal { () throws(SnapshotRefusal) in try uppercase.verifySignature(Self.key) } == .badSignature)
        }

        let unsigned = Self.metadata()
        #expect(Self.refusal { () throws(SnapshotRefusal) in try unsigned.verifySignature(Self.key) } == .unsigned)
        // accept_unsigned lets a snapshot without a signature through, never a wrong one.
        #expect(Self.refusal { () throws(SnapshotRefusal) in try unsigned.verifySignature(Self.key, acceptUnsigned: true) } == nil)
        #expect(Self.refusal { () throws(SnapshotRefusal) in try altered.verifySignature(Self.key, acceptUnsigned: true) } == .badSignature)
    }

    /// The metadata format of earlier versions (no signature field) still decodes, and is refused as unsigned.
    @Test func anEarlierVersionsMetadataIsUnsigned() throws {
        let text =
            #"{"createdAt":1763900000000,"cursor":{"harmonylite-changes-1":3},"format":2,"nodeID":9,"schemaHash":"","#
            + #""sha256":"\#(String(repeating: "0", count: 64))","size":4,"streams":{}}"#
        let read = try SnapshotMetadata(decoding: Array(text.utf8))
        #expect(read.signature == nil)
        #expect(Self.refusal { () throws(SnapshotRefusal) in try read.verifySignature(Self.key) } == .unsigned)
    }
}
