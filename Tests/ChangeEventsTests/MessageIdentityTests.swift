import ChangeEvents
import Testing

/// A node recognizes, by name alone, the messages it captured from the database it runs on now; nothing
/// else passes for one (another node, another incarnation — a restored database —, another subject).
@Suite struct MessageIdentityTests {
    @Test func theCapturersNameReadsBack() {
        let id = MessageIdentity(node: 3, incarnation: "9f1c2b3a4d5e6f70", shard: 2, firstChange: 41, lastChange: 77)
        #expect(id.text == "3.9f1c2b3a4d5e6f70.2.41-77")
        #expect(MessageIdentity(parsing: id.text) == id)
        #expect(MessageIdentity(parsing: "18446744073709551615.x.1.0-9223372036854775807")?.node == .max)
    }

    @Test func anythingElseIsNoIdentity() {
        for text in [
            "", "3", "3.abc.2", "3.abc.2.41", "3.abc.2.41-", "3..2.41-77", "03.abc.2.41-77", "3.abc.2.41-77.1", "3.abc.2.41--77",
            "+3.abc.2.41-77", "3.abc.2.41-9223372036854775808", "18446744073709551616.abc.2.41-77", "3.abc.x.41-77",
            "3.abc.2.41-77" + String(repeating: "7", count: 200),
        ] {
            #expect(MessageIdentity(parsing: text) == nil, "\(text)")
        }
    }

    @Test func heldOnlyByTheSameNodesSameDatabaseOnItsOwnSubject() {
        let id = MessageIdentity(node: 3, incarnation: "aaaa", shard: 1, firstChange: 1, lastChange: 5)
        #expect(id.isHeld(publisher: 3, node: 3, incarnation: "aaaa"))
        // After a restore the database has another incarnation: its own earlier messages are checked row by row.
        #expect(!id.isHeld(publisher: 3, node: 3, incarnation: "bbbb"))
        // Another node's message, whatever its header says.
        #expect(!id.isHeld(publisher: 4, node: 3, incarnation: "aaaa"))
        #expect(!id.isHeld(publisher: nil, node: 3, incarnation: "aaaa"))
        #expect(!id.isHeld(publisher: 4, node: 4, incarnation: "aaaa"))
    }

    @Test func theQuickCheckAgreesWithTheParsedOne() {
        let prefix = MessageIdentity.heldPrefix(node: 3, incarnation: "aaaa")
        for (text, publisher) in [
            ("3.aaaa.1.1-5", 3), ("3.aaaab.1.1-5", 3), ("3.aaa.1.1-5", 3), ("3.aaaa.1.1-5", 4), ("33.aaaa.1.1-5", 33), ("3.bbbb.2.7-9", 3),
        ] as [(String, UInt64)] {
            let parsed = MessageIdentity(parsing: text)?.isHeld(publisher: publisher, node: 3, incarnation: "aaaa") ?? false
            #expect(MessageIdentity.isHeld(messageID: text, publisher: publisher, node: 3, heldPrefix: prefix) == parsed, "\(text)")
        }
        #expect(!MessageIdentity.isHeld(messageID: nil, publisher: 3, node: 3, heldPrefix: prefix))
    }
}
