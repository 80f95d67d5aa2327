import Testing

@testable import SnapshotPlanner

/// Saving while holding the lease: when saves are due, and what stops them.
@Suite struct SavingTests {
    /// Ready at 100 with no restore, the lease taken and the newest snapshot read at 100.
    static func leading(_ settings: PlannerSettings = PlannerHarness.settings(), newestSnapshot: [String: UInt64]? = nil) -> PlannerHarness {
        var harness = PlannerHarness(settings)
        harness.newestSnapshot = newestSnapshot
        harness.start()
        harness.run(until: 100)
        #expect(harness.planner.isLeading)
        return harness
    }

    @Test func notLeadingNeverSaves() {
        var harness = PlannerHarness(PlannerHarness.settings(interval: 1))
        harness.leaseAnswer = .heldByAnother
        harness.lastSequences = ["hl-1": 10_000, "hl-2": 10_000]
        harness.start()
        harness.run(for: 60)
        #expect(harness.times(of: .checkLease).count >= 59, "the lease is still checked every second")
        #expect(harness.saveStarts.isEmpty)
        #expect(harness.times(of: .readStreamHistory).isEmpty)
        #expect(harness.times(of: .readNewestSnapshot).isEmpty)
        #expect(!harness.planner.isLeading)
        #expect(harness.pastDeadlinesWithNothingDue.isEmpty)
    }

    /// A node that does not save snapshots still knows the newest one's age: it looks at the store once
    /// ready, then every `newestLookInterval`, and when `-status` asks (at most every 5 s); a leader too
    /// (a snapshot saved by `-save-snapshot` is not its own).
    @Test func everyReadyNodeLooksAtTheNewestSnapshot() {
        var harness = PlannerHarness()
        harness.leaseAnswer = .heldByAnother
        harness.start()
        harness.run(for: 65)
        let interval = SnapshotPlanner.newestLookInterval
        #expect(harness.times(of: .lookAtNewestSnapshot) == [100, 100 + interval, 100 + 2 * interval], "\(harness.times(of: .lookAtNewestSnapshot))")
        #expect(harness.pastDeadlinesWithNothingDue.isEmpty)
        #expect(harness.planner.freshReadingsAsked(now: 162) == [], "looked 2 s ago")
        #expect(harness.planner.freshReadingsAsked(now: 166) == [.lookAtNewestSnapshot])
        #expect(harness.planner.freshReadingsAsked(now: 167) == [])

        var leader = Self.leading()
        leader.run(for: 65)
        #expect(leader.times(of: .lookAtNewestSnapshot) == [100, 100 + interval, 100 + 2 * interval])
        #expect(leader.planner.isLeading && leader.pastDeadlinesWithNothingDue.isEmpty)
        #expect(leader.planner.freshReadingsAsked(now: leader.now + 10) == [.lookAtNewestSnapshot])

        var disabled = PlannerHarness(PlannerHarness.settings(enabled: false))
        disabled.start()
        disabled.run(for: 65)
        #expect(disabled.times(of: .lookAtNewestSnapshot).isEmpty && disabled.planner.freshReadingsAsked(now: 200).isEmpty)
    }

    @Test func publishFalseNeverChecksTheLease() {
        var harness = PlannerHarness(PlannerHarness.settings(publish: false))
        harness.start()
        harness.run(for: 10)
        #expect(harness.planner.isReady)
        #expect(harness.times(of: .checkLease).isEmpty)
        #expect(harness.planner.nextDeadline == harness.planner.registry.nextSchemaRead, "only the registry's work is due")
    }

    @Test func intervalSaveIsDueOneIntervalAfterTakingTheLeaseAndAfterEachSave() {
        var harness = Self.leading()
        harness.run(until: 109.99)
        #expect(harness.saveStarts.isEmpty)
        harness.run(until: 125)
        // Taken at 100: due at 110; that save is over at its first poll (110.1): the next is due at 120.1.
        #expect(harness.saveStarts.count == 2)
        #expect(harness.saveStarts.first == 110)
        #expect(abs((harness.saveStarts.last ?? 0) - 120.1) < 1e-9)
        #expect(harness.planner.saved == 2)
        #expect(harness.pastDeadlinesWithNothingDue.isEmpty)
    }

    @Test func historyThresholdStartsASave() {
        // max_entries 100: a stream that took 50 messages since the newest snapshot's cursor is due.
        var harness = Self.leading(PlannerHarness.settings(interval: nil), newestSnapshot: ["hl-1": 100])
        harness.lastSequences = ["hl-1": 149, "hl-2": 49]
        harness.run(for: 5)
        #expect(harness.saveStarts.isEmpty)
        #expect(harness.times(of: .readStreamHistory).count >= 5, "the streams are read once a second")
        harness.lastSequences["hl-1"] = 150
        let before = harness.now
        harness.run(for: 1)
        #expect(harness.saveStarts.count == 1)
        #expect(harness.saveStarts.allSatisfy { $0 <= before + 1 })
        #expect(harness.reports.contains(.saving(.streamHistory(stream: "hl-1", messages: 50, maxEntries: 100))), "\(harness.reports)")
    }

    @Test func aSavedSnapshotsCursorIsTheNewHistoryBaseline() {
        var harness = Self.leading(PlannerHarness.settings(interval: nil), newestSnapshot: ["hl-1": 100])
        harness.lastSequences = ["hl-1": 150]
        harness.jobOutcome = { _ in .success(JobReport(summary: "saved", cursor: ["hl-1": 150])) }
        harness.run(for: 10)
        #expect(harness.saveStarts.count == 1)
        #expect(harness.planner.newestSnapshotCursor == ["hl-1": 150])
    }

    @Test func aFailedSaveIsRetriedNoSoonerThanFiveSeconds() {
        var harness = Self.leading(PlannerHarness.settings(interval: 1))
        harness.lastSequences = ["hl-1": 1_000]
        harness.jobOutcome = { kind in kind == .save ? .failure(JobFailure(description: "upload refused")) : nil }
        harness.run(for: 30)
        let starts = harness.saveStarts
        #expect(starts.count >= 4, "failed saves are retried")
        for (earlier, later) in zip(starts, starts.dropFirst()) {
            #expect(later - earlier >= 5, "save at \(earlier), again at \(later)")
        }
        #expect(harness.reports.contains(.saveFailed(error: "upload refused", retryIn: 5)))
        #expect(harness.planner.saved == 0)
        #expect(harness.pastDeadlinesWithNothingDue.isEmpty)
    }

    @Test func anUnansweredRenewalKeepsTheLeaseButStopsSavingUntilRenewed() {
        var harness = Self.leading()
        harness.run(until: 102.5)
        let unansweredFrom = harness.now
        harness.leaseAnswer = .unanswered("timeout")
        harness.run(until: 125)
        #expect(!harness.planner.isLeading)
        #expect(harness.saveStarts.isEmpty, "the interval save due at 110 is not made")
        #expect(harness.times(of: .readStreamHistory).allSatisfy { $0 <= unansweredFrom })
        #expect(harness.reports.contains(.leaseNotRenewed(error: "timeout")))
        #expect(harness.planner.leaseHeld, "the lease keeps its revision: still released on stop")

        harness.leaseAnswer = .held
        let renewedFrom = harness.now
        harness.run(until: 140)
        #expect(harness.planner.isLeading)
        #expect(harness.times(of: .readNewestSnapshot).contains { $0 > renewedFrom }, "the newest snapshot is read again")
        #expect(harness.saveStarts.count == 1)
        #expect(harness.saveStarts.allSatisfy { $0 >= renewedFrom + 10 })
        var planner = harness.planner
        #expect(planner.drain() == [.releaseLease])
    }

    @Test func aRefusedRenewalStopsLeading() {
        var harness = Self.leading()
        harness.run(until: 102.5)
        let refusedFrom = harness.now
        harness.leaseAnswer = .heldByAnother
        harness.run(until: 125)
        #expect(!harness.planner.isLeading)
        #expect(!harness.planner.leaseHeld)
        #expect(harness.saveStarts.isEmpty)
        #expect(harness.times(of: .readStreamHistory).allSatisfy { $0 <= refusedFrom })
        #expect(harness.reports.contains(.leaseLost))
        var planner = harness.planner
        #expect(planner.drain().isEmpty, "nothing to give up")
    }

    @Test func drainGivesTheLeaseUp() {
        var harness = Self.leading()
        #expect(harness.planner.drain() == [.releaseLease])
        #expect(!harness.planner.isLeading)
        #expect(harness.planner.drain().isEmpty)
    }

    @Test func theLeaseHolderRetriesAStoreThatDoesNotOpenAtEachLeaseCheck() {
        var harness = PlannerHarness()
        harness.storeOpens = false
        harness.start()
        harness.run(for: 5.5)
        #expect(!harness.planner.isLeading)
        #expect(harness.times(of: .openStore).count == harness.times(of: .checkLease).count)
        let storeWait = PlannerReport.waiting(for: .storeForLease("nats"), cause: "unreachable", retryEvery: 1)
        #expect(harness.reports.filter { $0 == storeWait }.count == 1, "said once until it changes")
        harness.storeOpens = true
        harness.run(for: 1)
        #expect(harness.planner.isLeading)
    }
}

/// A newest snapshot whose cursor is 2^64 − 1 (hostile metadata, or a recreated stream) is replaced by a
/// new save instead of trapping on `since + threshold`.
@Suite struct HostileCursorTests {
    @Test func snapshotClaimingMoreThanTheStreamHoldsIsReplaced() {
        var harness = SavingTests.leading(PlannerHarness.settings(interval: nil), newestSnapshot: ["hl-1": .max, "hl-2": 0])
        #expect(harness.saveStarts.isEmpty)
        harness.lastSequences = ["hl-1": 10, "hl-2": 0]
        harness.run(for: 3)
        #expect(harness.saveStarts.count >= 1)
        #expect(harness.reports.contains(.saving(.snapshotPastStream(stream: "hl-1", claimed: .max, last: 10))), "\(harness.reports)")
    }
}
