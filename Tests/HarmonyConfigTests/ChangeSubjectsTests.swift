import HarmonyConfig
import Testing

/// Change subjects name their publisher; a subject from the network is parsed totally, and only a
/// canonical `<prefix>-<shard>.<node>` that names the batch's origin confirms it.
@Suite struct ChangeSubjectsTests {
    let prefix = "hl-log"

    @Test func subjectsAStreamBindsAndANodePublishesOn() {
        #expect(ChangeSubjects.own(prefix: prefix, shard: 3, node: 12) == "hl-log-3.12")
        #expect(ChangeSubjects.streamSubjects(prefix: prefix, shard: 3) == ["hl-log-3", "hl-log-3.*"])
        #expect(ChangeSubjects.publisher(of: ChangeSubjects.own(prefix: prefix, shard: 3, node: .max), prefix: prefix) == .node(.max, shard: 3))
    }

    @Test func wellFormedSubjects() {
        #expect(ChangeSubjects.publisher(of: "hl-log-1", prefix: prefix) == .unnamed(shard: 1))
        #expect(ChangeSubjects.publisher(of: "hl-log-1.2", prefix: prefix) == .node(2, shard: 1))
        #expect(ChangeSubjects.publisher(of: "hl-log-10.18446744073709551615", prefix: prefix) == .node(.max, shard: 10))
    }

    @Test(arguments: [
        "", "hl-log", "hl-log-", "hl-log-.", "hl-log-1.", "hl-log-.1", "hl-log-1..2", "hl-log-1.2.3", "hl-log-1.2.",
        "hl-log-1.x", "hl-log-x.1", "hl-log-1.+2", "hl-log-+1", "hl-log-1.-2", "hl-log-1.02", "hl-log-01.2", "hl-log-0", "hl-log-1.0",
        "hl-log-1.18446744073709551616", "hl-log-1.99999999999999999999999", "hl-log-18446744073709551616.1",
        "hl-log-1.2 ", " hl-log-1.2", "hl-log-1.\u{0662}", "hl-log-1.２", "other-1.2", "hl-logs-1.2", "HL-LOG-1.2", "hl-log-1.*", "hl-log-1.>",
        "hl-log-1.2\u{0}", "hl-log-1.2\n",
    ])
    func hostileSubjectsAreNoChangeSubject(_ subject: String) {
        #expect(ChangeSubjects.publisher(of: subject, prefix: prefix) == .notAChangeSubject, "\(subject.debugDescription)")
        guard case .refused(let reason) = ChangeSubjects.check(subject: subject, prefix: prefix, origin: 2) else {
            Issue.record("\(subject.debugDescription) was not refused")
            return
        }
        #expect(reason.contains("node 2") && !reason.contains("\n") && !reason.contains("\u{0}"), "\(reason)")
    }

    @Test func theSubjectMustNameTheOrigin() {
        #expect(ChangeSubjects.check(subject: "hl-log-1.2", prefix: prefix, origin: 2) == .confirmed)
        #expect(ChangeSubjects.check(subject: "hl-log-1", prefix: prefix, origin: 2) == .unchecked)
        guard case .refused(let reason) = ChangeSubjects.check(subject: "hl-log-1.1", prefix: prefix, origin: 2) else {
            Issue.record("a batch of origin 2 on node 1's subject was not refused")
            return
        }
        #expect(reason.contains("comes from node 2 but node 1 published it") && reason.contains("\"hl-log-1.1\""), "\(reason)")
    }

    @Test func aHugeSubjectIsRefusedWithABoundedReason() {
        let subject = "hl-log-1." + String(repeating: "9", count: 100_000)
        guard case .refused(let reason) = ChangeSubjects.check(subject: subject, prefix: prefix, origin: 2) else {
            Issue.record("not refused")
            return
        }
        #expect(reason.utf8.count < 1_000)
    }
}
