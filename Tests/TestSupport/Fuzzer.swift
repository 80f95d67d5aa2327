import Foundation

/// Mutation fuzzing of a decoder of outside bytes: valid inputs (seeds) are mutated by a seeded generator
/// — bytes flipped or set to edge values, integers overwritten with 0, −1, 2^31, 2^63, 2^64 − 1, decimal
/// numbers in text replaced by the same edges, ranges cut, repeated or spliced from another seed, random
/// bytes — and each mutant is decoded. A trap (overflow, out-of-range index, huge allocation) kills the
/// test process, which is the failure; the decoder may accept or refuse.
///
/// Short form: `shortInputs` per decoder in the normal test run. Long form: `HL_FUZZ_INPUTS=1000000`
/// (`benchmarks/fuzz.sh`). `HL_FUZZ_SEED` replays another seed. Each run prints one `fuzz` line with
/// inputs, accepted, refused, seconds and inputs/s.
public enum Fuzzer {
    public struct Report: CustomStringConvertible, Sendable {
        public var name: String
        public var inputs: Int
        public var accepted: Int
        public var seconds: Double
        public var refused: Int { inputs - accepted }
        public var description: String {
            "fuzz \(name): \(inputs) inputs, \(accepted) accepted, \(refused) refused, "
                + String(format: "%.2f s, %.0f inputs/s", seconds, Double(inputs) / max(seconds, 1e-9))
        }
    }

    public static func inputCount(short: Int) -> Int {
        ProcessInfo.processInfo.environment["HL_FUZZ_INPUTS"].flatMap(Int.init) ?? short
    }

    /// Feeds `inputCount(short:)` mutants of `seeds` to `decode`, which returns whether it accepted one.
    @discardableResult
    public static func run(_ name: String, seeds: [[UInt8]], short: Int = 10_000, seed: UInt64 = 0x5EC0_F022, decode: ([UInt8]) -> Bool) -> Report {
        precondition(!seeds.isEmpty)
        let replay = ProcessInfo.processInfo.environment["HL_FUZZ_SEED"].flatMap { UInt64($0) } ?? seed
        var rng = SplitMix64(seed: replay)
        let count = inputCount(short: short)
        var accepted = 0
        let started = Date()
        for _ in 0..<count {
            let input = mutate(seeds[Int(rng.next() % UInt64(seeds.count))], seeds: seeds, rng: &rng)
            if decode(input) { accepted += 1 }
        }
        let report = Report(name: name, inputs: count, accepted: accepted, seconds: Date().timeIntervalSince(started))
        print(report)
        return report
    }

    static let edgeIntegers: [UInt64] = [
        0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
        0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, .max, .max - 1,
    ]
    static let edgeNumbers = [
        "-1", "0", "-0", "18446744073709551615", "18446744073709551616", "9223372036854775807",
        "9223372036854775808", "-9223372036854775809", "1e400", "4294967296", "99999999999999999999999",
    ]

    /// One mutant: one to four mutations of `input`.
    public static func mutate(_ input: [UInt8], seeds: [[UInt8]], rng: inout SplitMix64) -> [UInt8] {
        var bytes = input
        for _ in 0..<(1 + rng.next() % 4) {
            let at = bytes.isEmpty ? 0 : Int(rng.next() % UInt64(bytes.count))
            switch rng.next() % 10 {
            case 0 where !bytes.isEmpty:
                bytes[at] = UInt8(truncatingIfNeeded: rng.next())
            case 1 where !bytes.isEmpty:
                bytes[at] = [0, 0xFF, 0x7F, 0x80, 0x22, 0x5C, 0x0A][Int(rng.next() % 7)]
            case 2:
                // An edge integer, big-endian, in 2, 4 or 8 bytes.
                let width = [2, 4, 8][Int(rng.next() % 3)]
                let value = edgeIntegers[Int(rng.next() % UInt64(edgeIntegers.count))]
                let encoded = (0..<width).reversed().map { UInt8(truncatingIfNeeded: value >> (UInt64($0) * 8)) }
                bytes.replaceSubrange(at..<min(bytes.count, at + width), with: encoded)
            case 3:
                // A decimal number in text replaced by an edge number.
                let digits = bytes.indices.filter { (48...57).contains(bytes[$0]) }
                guard let pick = digits.isEmpty ? nil : digits[Int(rng.next() % UInt64(digits.count))] else { continue }
                var start = pick, end = pick
                while start > 0, (48...57).contains(bytes[start - 1]) || bytes[start - 1] == 45 { start -= 1 }
                while end < bytes.count, (48...57).contains(bytes[end]) { end += 1 }
                bytes.replaceSubrange(start..<end, with: Array(edgeNumbers[Int(rng.next() % UInt64(edgeNumbers.count))].utf8))
            case 4 where !bytes.isEmpty:
                bytes.removeSubrange(at..<min(bytes.count, at + 1 + Int(rng.next() % 16)))
            case 5 where !bytes.isEmpty:
                let piece = bytes[at..<min(bytes.count, at + 1 + Int(rng.next() % 32))]
                bytes.insert(contentsOf: Array(piece), at: Int(rng.next() % UInt64(bytes.count + 1)))
            case 6:
                bytes.removeLast(Int(rng.next() % UInt64(bytes.count + 1)))
            case 7:
                let other = seeds[Int(rng.next() % UInt64(seeds.count))]
                let from = other.isEmpty ? 0 : Int(rng.next() % UInt64(other.count))
                bytes = Array(bytes.prefix(at)) + Array(other[from...])
            case 8:
                bytes.insert(contentsOf: (0..<(1 + rng.next() % 8)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
            default:
                if rng.next() % 8 == 0 { bytes = (0..<(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
            }
        }
        return bytes
    }
}
