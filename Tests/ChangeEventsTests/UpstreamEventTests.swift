import Foundation
import SQLiteKit
import TestSupport
import Testing

@testable import ChangeEvents

/// Messages upstream HarmonyLite's (Go) binary published, read back from its stream
/// (`Tests/Fixtures/upstream/README.md`).
enum UpstreamMessages {
    static func fixture(_ name: String) throws -> [UInt8] {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/upstream")
        return Array(try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static var all: [[UInt8]] {
        get throws { try (1...4).map { try fixture("message-books-\($0).cbor") } + (1...5).map { try fixture("message-types-\($0).zst") } }
    }
}

@Suite struct UpstreamEventTests {
    /// Node 1's `books` changes, uncompressed: insert 1, insert 2, update 1, delete 2.
    @Test func uncompressedMessagesDecodeToTheirRows() throws {
        let events = try (1...4).map { try UpstreamEvent(decoding: try UpstreamMessages.fixture("message-books-\($0).cbor")) }
        #expect(events.map(\.origin) == [1, 1, 1, 1])
        #expect(events.map(\.id) == [1, 2, 3, 4])
        #expect(events.map(\.operation) == [.insert, .insert, .update, .delete])
        #expect(events.allSatisfy { $0.table == "books" && $0.columns == ["cover", "id", "price", "title"] })
        #expect(events[0].values == [.blob([1, 2]), .integer(1), .real(1.5), .text("a")])
        #expect(events[1].values == [.null, .integer(2), .null, .text("b")])
        #expect(events[2].values == [.blob([1, 2]), .integer(1), .real(1.5), .text("c")])
        #expect(events[0].schemaHash?.count == 64)
        // As ours: key first, stamped by the caller's rule; a delete carries the key only.
        let upsert = try #require(events[2].changeEvent(primaryKey: ["id"], stamp: 7 << 16, writer: 1))
        #expect(upsert.columns == ["id", "cover", "price", "title"] && upsert.keyCount == 1 && upsert.operation == .upsert)
        let delete = try #require(events[3].changeEvent(primaryKey: ["id"], stamp: 8 << 16, writer: 1))
        #expect(delete.columns == ["id"] && delete.values == [.integer(2)] && delete.operation == .delete)
        #expect(events[3].changeEvent(primaryKey: ["isbn"], stamp: 1, writer: 1) == nil)
    }

    /// Node 3's `t(id, name, n, r, b, d DATETIME)` changes with `compress = true`: zstd frames, most without
    /// a recorded size; extreme integers, a float of 1e300, UTF-8 text, blobs, a 5,000-character text and
    /// a 3,000-byte blob, and DATETIME values sent as upstream's time wrapper (tag 32).
    @Test func compressedMessagesDecodeWithEveryValueKind() throws {
        let events = try (1...5).map { try UpstreamEvent(decoding: try UpstreamMessages.fixture("message-types-\($0).zst")) }
        #expect(events.map(\.origin) == [3, 3, 3, 3, 3])
        #expect(events.map(\.operation) == [.insert, .insert, .update, .delete, .insert])
        #expect(events[0].columns == ["b", "d", "id", "n", "name", "r"])
        #expect(events[0].values == [.blob([0, 0xFF]), .text("2024-05-06 07:08:09+00:00"), .integer(1), .integer(-42), .text("héllo"), .real(-0.5)])
        #expect(events[1].values == [.null, .null, .integer(2), .integer(.max), .null, .real(1e300)])
        #expect(events[2].values[3] == .integer(.min))
        #expect(events[4].values[0] == .blob([UInt8](repeating: 0, count: 3000)))
        #expect(events[4].values[4] == .text(String(repeating: "x", count: 5000)))
    }

    @Test func theStampRuleKeepsOneRowsMessagesInStreamOrder() {
        let time: Int64 = 1_796_616_968_124_000_000  // ns
        let first = UpstreamEvent.stamp(jetStreamNanoseconds: time, sequence: 41)
        let second = UpstreamEvent.stamp(jetStreamNanoseconds: time + 10_000, sequence: 42)  // same millisecond
        #expect(first >> 16 == 1_796_616_968_124 && second > first)
        #expect(UpstreamEvent.stamp(jetStreamNanoseconds: time + 1_000_000, sequence: 0) > second)
        #expect(UpstreamEvent.stamp(jetStreamNanoseconds: -5, sequence: 3) == 3)
    }

    /// What `publish_for_upstream` sends decodes as upstream's own messages do, marked as our copy.
    @Test func ourChangesEncodeAsUpstreamEvents() throws {
        let upsert = ChangeEvent(
            changeID: 9, table: "t", operation: .upsert, stamp: 1 << 16, writer: 2, columns: ["id", "a", "b", "c", "d", "e"],
            values: [.integer(-5), .real(2.5), .text("é"), .text([0xFF, 0xFE]), .blob([1]), .null], keyCount: 1)
        for compress in [false, true] {
            let decoded = try UpstreamEvent(decoding: UpstreamEvent.encode(upsert, origin: 2, schemaHash: "abc", compress: compress))
            #expect(decoded.origin == 2 && decoded.republished && decoded.id == 9 && decoded.operation == .insert && decoded.schemaHash == "abc")
            #expect(decoded.columns == ["a", "b", "c", "d", "e", "id"])
            #expect(decoded.values == [.real(2.5), .text("é"), .blob([0xFF, 0xFE]), .blob([1]), .null, .integer(-5)])
        }
        let delete = ChangeEvent(
            changeID: 10, table: "t", operation: .delete, stamp: 2 << 16, writer: 2, columns: ["id"], values: [.integer(.min)], keyCount: 1)
        let decoded = try UpstreamEvent(decoding: UpstreamEvent.encode(delete, origin: 2, schemaHash: "", compress: false))
        #expect(decoded.operation == .delete && decoded.values == [.integer(.min)])
        #expect(try !UpstreamEvent(decoding: UpstreamMessages.fixture("message-books-1.cbor")).republished)
    }

    @Test func hostileMessagesAreRefusedNotCrashedOn() throws {
        // Our own batches are not upstream's, and the other way round.
        #expect(!UpstreamEvent.looksUpstream([1, 0, 0]))
        #expect(try UpstreamMessages.all.allSatisfy(UpstreamEvent.looksUpstream))
        for bytes: [UInt8] in [
            [], [0xA0], [0xBF], [0xA1, 0x61, 0x41], [0x28, 0xB5, 0x2F, 0xFD], [0xA1, 0x60, 0x9B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
            Array(repeating: 0xA1, count: 1000),
        ] {
            #expect(throws: UpstreamEventError.self) { _ = try UpstreamEvent(decoding: bytes) }
        }
        #expect(TimeText.format(seconds: 0, nanoseconds: 0) == "1970-01-01 00:00:00+00:00")
        #expect(TimeText.format(seconds: -1, nanoseconds: 500_000_000) == "1969-12-31 23:59:59.5+00:00")
    }
}

@Suite struct FuzzUpstreamEvent {
    /// Mutants of upstream's real messages, uncompressed and compressed.
    @Test func fuzzUpstreamEventDecoder() throws {
        let report = Fuzzer.run("upstream event", seeds: try UpstreamMessages.all) { (try? UpstreamEvent(decoding: $0)) != nil }
        #expect(report.accepted > 0 && report.refused > 0)
    }

    /// A parked upstream message keeps the stamp it had when it arrived (its JetStream time, which a
    /// retry no longer has) and its bytes; nothing else unwraps: not our batches, not upstream's
    /// messages, not a truncated envelope.
    @Test func aParkedUpstreamMessageKeepsItsStamp() throws {
        let message = try UpstreamMessages.all[0]
        let stamp = UpstreamEvent.stamp(jetStreamNanoseconds: 1_765_000_000_123_000_000, sequence: 70_000)
        let parked = ParkedUpstreamEvent.wrap(stamp: stamp, message: message)
        let unwrapped = try #require(ParkedUpstreamEvent.unwrap(parked))
        #expect(unwrapped.stamp == stamp && unwrapped.message == message)
        #expect(!UpstreamEvent.looksUpstream(parked))
        #expect((try? ChangeBatch(decoding: parked)) == nil)
        #expect(ParkedUpstreamEvent.unwrap(message) == nil)
        #expect(ParkedUpstreamEvent.unwrap(Array(parked.prefix(12))) == nil)
        #expect(ParkedUpstreamEvent.unwrap(ChangeBatch(origin: 1, schemaHash: "", events: []).encoded(compress: false)) == nil)
    }
}
