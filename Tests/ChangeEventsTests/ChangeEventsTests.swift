import BinaryCoding
import TestSupport
import Testing

@testable import ChangeEvents
@testable import SQLiteKit

@Suite struct ChangeEventsTests {
    /// Every storage class and its edges.
    static let edgeValues: [SQLiteValue] = [
        .null, .integer(0), .integer(Int64.max), .integer(Int64.min), .integer(-1),
        .real(0.0), .real(-0.0), .real(1.0 / 3.0), .real(Double.greatestFiniteMagnitude), .real(-Double.leastNonzeroMagnitude), .real(.infinity),
        .text(""), .text("ünïcødé ☃ 𝄞"), .text([0x61, 0x00, 0x62]), .text([0xFF, 0xFE]), .text(String(repeating: "long ", count: 20_000)),
        .blob([]), .blob([0, 0, 0]), .blob((0...255).map { UInt8($0) }),
        .text("2024-01-02 03:04:05.678"), .text("1e3"),
    ]

    static func sampleBatch(_ count: Int = 3) -> ChangeBatch {
        let columns: [String] = ["id"] + edgeValues.indices.map { "c\($0)" }
        var events: [ChangeEvent] = []
        for index in 0..<count {
            let table = index % 2 == 0 ? "books" : "naïve table"
            let operation: ChangeEvent.Operation = index == 2 ? .delete : .upsert
            let values: [SQLiteValue] = [.integer(Int64(index))] + edgeValues
            events.append(
                ChangeEvent(
                    changeID: Int64(index + 1), table: table, operation: operation, stamp: UInt64.max - UInt64(index),
                    writer: UInt64.max, columns: columns, values: values, keyCount: 1))
        }
        return ChangeBatch(origin: 0xFEED_FACE_CAFE_BEEF, schemaHash: String(repeating: "ab", count: 32), events: events)
    }

    @Test(arguments: [false, true])
    func batchesRoundTripBitForBit(compress: Bool) throws {
        let batch = Self.sampleBatch()
        let bytes = batch.encoded(compress: compress)
        #expect(bytes[1] == (compress ? 1 : 0))
        let decoded = try ChangeBatch(decoding: bytes)
        #expect(decoded == batch)
        // -0.0 stays negative zero; SQLiteValue compares reals by bit pattern.
        #expect(decoded.events[0].values.contains { if case .real(let v) = $0 { v == 0 && v.sign == .minus } else { false } })
    }

    /// The decoder reuses the previous event's table and column names when the bytes match: events whose
    /// shapes change from one to the next (same width with one name different, same names under another
    /// table, names that share a prefix or differ in length, an empty name, a wider and a narrower row) must
    /// still come back exactly as sent.
    @Test func repeatedAndChangingNamesRoundTrip() throws {
        let shapes: [(table: String, columns: [String])] = [
            ("books", ["id", "title", "author"]), ("books", ["id", "title", "author"]), ("books", ["id", "title", "autho"]),
            ("books", ["id", "title", "authors"]), ("book", ["id", "title", "authors"]), ("book", ["id", "", "authors"]),
            ("book", ["id"]), ("book", ["id", "title", "authors", "year"]), ("naïve table", ["id", "title", "authors", "year"]),
            ("naïve table", ["id", "title", "authors", "year"]), ("books", ["ID", "title", "authors", "year"]),
        ]
        let events = shapes.enumerated().map { index, shape in
            ChangeEvent(
                changeID: Int64(index + 1), table: shape.table, operation: .upsert, stamp: UInt64(index), writer: 1, columns: shape.columns,
                values: shape.columns.indices.map { .integer(Int64($0)) }, keyCount: 1)
        }
        let batch = ChangeBatch(origin: 7, schemaHash: "h", events: events)
        for compress in [false, true] {
            let decoded = try ChangeBatch(decoding: batch.encoded(compress: compress))
            #expect(decoded == batch)
            #expect(decoded.events.map(\.table) == shapes.map(\.table))
            #expect(decoded.events.map(\.columns) == shapes.map(\.columns))
        }
        // A name whose bytes are not UTF-8 is still refused when a valid name of the same length came before.
        var bytes = ChangeBatch(origin: 7, schemaHash: "h", events: [events[0], events[1]]).encoded(compress: false)
        let second = bytes.indices.filter { bytes[$0...].starts(with: Array("author".utf8)) }.last!
        bytes[second] = 0xFF
        #expect(throws: ChangeBatchError.self) { try ChangeBatch(decoding: bytes) }
    }

    @Test func compressionShrinksRepetitiveBatches() {
        let batch = Self.sampleBatch(20)
        #expect(batch.encoded(compress: true).count * 5 < batch.encoded(compress: false).count)
    }

    @Test func damagedBatchesAreErrors() {
        let good = Self.sampleBatch().encoded(compress: false)
        #expect(throws: ChangeBatchError.self) { try ChangeBatch(decoding: []) }
        #expect(throws: ChangeBatchError.self) { try ChangeBatch(decoding: [2, 0] + good.dropFirst(2)) }
        #expect(throws: ChangeBatchError.self) { try ChangeBatch(decoding: [1, 4] + good.dropFirst(2)) }
        #expect(throws: ChangeBatchError.self) { try ChangeBatch(decoding: Array(good.dropLast())) }
        #expect(throws: ChangeBatchError.self) { try ChangeBatch(decoding: good + [0]) }
        #expect(throws: ChangeBatchError.self) { try ChangeBatch(decoding: [1, 1, 1, 2, 3]) }
    }

    @Test func decompressionBombIsRefusedBeforeAllocating() {
        let huge = [UInt8](repeating: 0, count: ChangeBatch.maximumBodySize + 1)
        let bomb = [ChangeBatch.version, 1] + Zstd.compress(huge)
        let error = #expect(throws: ChangeBatchError.self) { try ChangeBatch(decoding: bomb) }
        #expect(error?.description.contains("above the") == true)
    }

    @Test func fuzzedBatchesNeverCrash() {
        var rng = SplitMix64(seed: 77)
        let valid = [Self.sampleBatch(2).encoded(compress: false), Self.sampleBatch(2).encoded(compress: true)]
        var rejected = 0
        for round in 0..<3000 {
            var bytes = valid[round % 2]
            for _ in 0..<(1 + rng.next() % 6) {
                bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
            }
            if rng.next() % 4 == 0 { bytes.removeLast(Int(rng.next() % UInt64(bytes.count))) }
            do { _ = try ChangeBatch(decoding: bytes) } catch { rejected += 1 }
        }
        #expect(rejected > 1000)
    }

    /// The shard hash mixes each key value's bytes as `BinaryWriter` writes them, without writing them: the
    /// same shard as hashing the written bytes, over generated keys of every storage class (seeded).
    @Test func shardIsTheHashOfTheWrittenKey() {
        func reference(table: String, key: [SQLiteValue], shards: UInt64) -> UInt64 {
            var hash: UInt64 = 14_695_981_039_346_656_037
            var writer = BinaryWriter()
            for value in key { writer.write(value: value) }
            for byte in Array(table.utf8) + [0] + writer.bytes {
                hash ^= UInt64(byte)
                hash = hash &* 1_099_511_628_211
            }
            return hash % max(1, shards) + 1
        }
        var rng = SplitMix64(seed: 0x5EED_5A4D)
        for _ in 0..<5000 {
            let key: [SQLiteValue] = (0..<(1 + rng.next() % 3)).map { _ in
                let bytes = (0..<(rng.next() % 12)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                switch rng.next() % 5 {
                case 0: return .null
                case 1: return .integer(Int64(bitPattern: rng.next()))
                case 2: return .real(Double(bitPattern: rng.next()))
                case 3: return .text(bytes)
                default: return .blob(bytes)
                }
            }
            let table = ["t", "books", "ünïcode", ""][Int(rng.next() % 4)]
            for shards: UInt64 in [1, 2, 3, 4, 7, 16] {
                #expect(Shard.of(table: table, key: key, shards: shards) == reference(table: table, key: key, shards: shards))
            }
        }
    }

    @Test func shardsAreStableAndSpread() {
        #expect(Shard.of(table: "books", key: [.integer(42)], shards: 1) == 1)
        let a = Shard.of(table: "books", key: [.integer(42)], shards: 8)
        #expect(a == Shard.of(table: "books", key: [.integer(42)], shards: 8))
        #expect((1...8).contains(a))
        // Storage class matters: 42 and '42' are different keys.
        let counts = (0..<800).reduce(into: [UInt64: Int]()) { counts, key in
            counts[Shard.of(table: "t", key: [.integer(Int64(key))], shards: 4), default: 0] += 1
        }
        #expect(counts.keys.sorted() == [1, 2, 3, 4])
        #expect(counts.values.allSatisfy { $0 > 120 })
    }
}

@Suite struct FuzzChangeBatch {
    @Test func fuzzChangeBatchDecoder() {
        // The sample batches without their 100 KB text: mutants of small inputs reach more fields per second.
        var small = ChangeEventsTests.sampleBatch(3)
        for index in small.events.indices {
            small.events[index].values = small.events[index].values.map { if case .text(let bytes) = $0, bytes.count > 100 { .text("long") } else { $0 } }
        }
        let seeds = [small.encoded(compress: false), small.encoded(compress: true)]
        let report = Fuzzer.run("change batch", seeds: seeds) { (try? ChangeBatch(decoding: $0)) != nil }
        #expect(report.accepted > 0 && report.refused > 0)
    }
}
