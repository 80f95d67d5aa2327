import Foundation
import Testing

@testable import BrokerCore

/// One node id, one running node: the claim's decisions.
@Suite struct NodeClaimTests {
    static let me = NodeClaim.Holder(instance: "host-b|/var/lib/hl/app.db|77", host: "host-b", databasePath: "/var/lib/hl/app.db")
    static let other = NodeClaim.Holder(instance: "host-a|/var/lib/hl/app.db|12", host: "host-a", databasePath: "/var/lib/hl/app.db")

    @Test func anUnclaimedIdIsCreatedAndOwnClaimTakenOver() {
        var claim = NodeClaim(nodeID: 2, me: Self.me, ttl: 10)
        #expect(claim.read(nil, now: 0) == .create)
        #expect(claim.read((Self.me, 5), now: 0) == .takeOver, "a broker restarted under the same supervisor")
        #expect(claim.renewInterval > 3 && claim.renewInterval < 3.4)
    }

    @Test func aRenewedClaimOfAnotherHostRefusesTheStartNamingBothHosts() {
        var claim = NodeClaim(nodeID: 2, me: Self.me, ttl: 10)
        #expect(claim.read((Self.other, 7), now: 100) == .wait(say: .watching(nodeID: 2, holder: Self.other, ttl: 10)), "waits first")
        #expect(claim.read((Self.other, 7), now: 101) == .wait(say: nil))
        guard case .refuse(let why) = claim.read((Self.other, 8), now: 103.3) else { Issue.record("refused once renewed"); return }
        #expect(why.contains("node_id 2 is already used by a running node on host host-a") && why.contains("this node is on host host-b"), "\(why)")
    }

    @Test func aStaleClaimIsWaitedOutLoudlyThenCreated() {
        var claim = NodeClaim(nodeID: 2, me: Self.me, ttl: 10)
        _ = claim.read((Self.other, 7), now: 100)
        var said: [NodeClaim.Wait] = []
        for second in 101...108 {
            if case .wait(let wait?) = claim.read((Self.other, 7), now: Double(second)) { said.append(wait) }
        }
        #expect(said == [.stillWaiting(nodeID: 2, seconds: 5, holder: Self.other, ttl: 10)])
        #expect(
            said.first?.statusLine
                == "still waiting for node id 2's claim (5 s): held by host host-a (database /var/lib/hl/app.db), not renewed; it ages out within 10 s of its last renewal"
        )
        #expect(said.first?.metadata == ["node_id": "2", "waited_s": "5", "ttl_s": "10", "held_by_host": "host-a", "held_by_database": "/var/lib/hl/app.db"])
        #expect(said.first.map { !$0.message.contains("host-a") && !$0.message.contains("2") } == true, "the message is constant")
        #expect(claim.read(nil, now: 109) == .create, "aged out")
        // Another holder after that is watched afresh.
        guard case .wait(.some) = claim.read((Self.other, 30), now: 110) else { Issue.record("watched afresh"); return }
    }

    /// The process test's flake: the supervisor killed with SIGKILL, its broker saw the control socket close
    /// before the parent-death SIGKILL and deleted the claim, so the restart (or a duplicate watching the claim)
    /// found the id free at once. Only a stopping node gives its id up.
    @Test func onlyAStoppingNodeGivesItsIdUpACrashOrABrokerFailureLeavesTheClaim() {
        #expect(NodeClaim.releases(on: .nodeStopping))
        #expect(!NodeClaim.releases(on: .supervisorGone), "a crashed node's claim ages out")
        #expect(!NodeClaim.releases(on: .brokerFailed), "the next broker under the same supervisor takes it over")
        // The claim left behind by a crash is watched, and waited out, by the restart (another supervisor).
        var restart = NodeClaim(nodeID: 2, me: Self.other, ttl: 10)
        let crashed = NodeClaim.Holder(instance: "host-a|/var/lib/hl/app.db|11", host: "host-a", databasePath: "/var/lib/hl/app.db")
        guard case .wait(.some) = restart.read((crashed, 4), now: 0) else { Issue.record("the restart waits"); return }
        guard case .wait(.some) = restart.read((crashed, 4), now: 9) else { Issue.record("still waits, not renewed"); return }
        #expect(restart.read(nil, now: 10) == .create, "aged out")
    }

    @Test func claimValuesAreDecodedTotally() {
        #expect(NodeClaim.Holder(decoding: Self.other.encoded) == Self.other)
        #expect(NodeClaim.Holder(decoding: Array("garbage".utf8)) == nil)
        #expect(NodeClaim.Holder(decoding: Array(repeating: 65, count: 5000)) == nil)
        var claim = NodeClaim(nodeID: 2, me: Self.me, ttl: 10)
        #expect(claim.read((nil, 3), now: 0) == .wait(say: .watching(nodeID: 2, holder: nil, ttl: 10)), "an unreadable claim is watched")
        #expect(NodeClaim.Wait.watching(nodeID: 2, holder: nil, ttl: 10).statusLine.contains("held by an unreadable claim"))
    }

    /// Another region's claim arrives as a message-get answer (base64, untrusted): a deleted or purged key
    /// (a clean stop) is no claim; a holder is decoded with the message's sequence as its revision; junk is
    /// an unreadable claim, watched like any other.
    @Test func anotherRegionsClaimIsDecodedFromTheMessageGetAnswer() {
        func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        let held = NodeClaim.remoteEntry(sequence: 9, headersBase64: "", dataBase64: Data(Self.other.encoded).base64EncodedString())
        #expect(held?.holder == Self.other && held?.revision == 9)
        #expect(NodeClaim.remoteEntry(sequence: 10, headersBase64: b64("NATS/1.0\r\nKV-Operation: DEL\r\n\r\n"), dataBase64: "") == nil)
        #expect(NodeClaim.remoteEntry(sequence: 11, headersBase64: b64("NATS/1.0\r\nKV-Operation: PURGE\r\nNats-Rollup: sub\r\n\r\n"), dataBase64: "") == nil)
        let junk = NodeClaim.remoteEntry(sequence: 12, headersBase64: "%%%", dataBase64: "not base64")
        #expect(junk != nil && junk?.holder == nil && junk?.revision == 12)
        let huge = NodeClaim.remoteEntry(sequence: 13, headersBase64: "", dataBase64: String(repeating: "A", count: 100_000))
        #expect(huge != nil && huge?.holder == nil)
        // Renewed there: refused, as in one region.
        var claim = NodeClaim(nodeID: 2, me: Self.me, ttl: 10)
        _ = claim.read(held, now: 0)
        guard case .refuse(let why) = claim.read((Self.other, 10), now: 3.4) else { Issue.record("a renewed claim refuses"); return }
        #expect(why.contains("host host-a") && why.contains("host host-b"))
    }
}
