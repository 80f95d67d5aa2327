import TestSupport
import Testing

@testable import NKeys

@Suite struct NKeysTests {
    /// The pair nats.rs uses in its nkey authentication test.
    @Test func publicKeyOfAKnownSeed() throws {
        let seed = try NKeySeed(parsing: "SUANQDPB2RUOE4ETUA26CNX7FUKE5ZZKFCQIIW63OX225F2CO7UEXTM7ZY")
        #expect(seed.publicKey == "UAMMBNV2EYR65NYZZ7IAK5SIR5ODNTTERJOBOF4KJLMWI45YOXOSWULM")
    }

    @Test func generatedSeedsRoundTripThroughText() throws {
        for _ in 0..<20 {
            let seed = NKeySeed.generate()
            #expect(seed.encoded.hasPrefix("SU"))
            #expect(seed.publicKey.hasPrefix("U") && seed.publicKey.count == 56)
            let parsed = try NKeySeed(parsing: "-----BEGIN USER NKEY SEED-----\n\(seed.encoded)\n------END USER NKEY SEED------\n")
            #expect(parsed.publicKey == seed.publicKey)
        }
    }

    @Test func damagedSeedsAreRefused() {
        let good = "SUANQDPB2RUOE4ETUA26CNX7FUKE5ZZKFCQIIW63OX225F2CO7UEXTM7ZY"
        let flipped = String(good.prefix(20)) + (good.dropFirst(20).first == "A" ? "B" : "A") + good.dropFirst(21)
        #expect(throws: NKeySeed.InvalidSeed.self) { try NKeySeed(parsing: flipped) }
        #expect(throws: NKeySeed.InvalidSeed.self) { try NKeySeed(parsing: "no seed here") }
        #expect(throws: NKeySeed.InvalidSeed.self) { try NKeySeed(parsing: String(good.dropLast(4))) }
    }
}
