import Testing

@testable import SnapshotPlanner

/// `nextDeadline` is a value from the planner's state: never before the `now` it was computed at unless a
/// tick at that `now` has work, never read from a clock.
@Suite struct DeadlineTests {
    @Test func whenDisabledOnlyTheRegistrysConnectAndReads() {
        var planner = SnapshotPlanner(settings: PlannerHarness.settings(enabled: false))
        _ = planner.start(now: 5)
        #expect(planner.nextDeadline == 0, "connecting for the registry is due at once")
        #expect(planner.tick(now: 1_000) == [.connect])
        #expect(planner.nextDeadline == 1_001, "the connect is retried every second until answered")
        _ = planner.connected(now: 1_000)
        #expect(planner.nextDeadline == 1_000)
        #expect(planner.tick(now: 1_000) == [.readLocalSchema])
        #expect(planner.nextDeadline == 1_000 + RegistrySchedule.schemaReadInterval)
    }

    @Test func afterEveryEventTheDeadlineIsAheadUnlessWorkIsDue() {
        // Every path: connect failures, a decision error, a store that fails, a restore, leading, history
        // saves, a failed save, an unanswered renewal, a lost lease, a retaken one.
        var harness = PlannerHarness(PlannerHarness.settings(interval: 2))
        harness.connects = false
        harness.start()
        harness.run(for: 2)
        harness.connects = true
        harness.restoreDecision = .failure(RestoreDecisionError(.streamsUnanswered, "no answer"))
        harness.run(for: 2)
        harness.restoreDecision = .success("there is no seq map")
        harness.storeOpens = false
        harness.run(for: 2)
        harness.storeOpens = true
        harness.run(for: 5)
        harness.lastSequences = ["hl-1": 500]
        harness.run(for: 5)
        harness.jobOutcome = { _ in .failure(JobFailure(description: "refused")) }
        harness.run(for: 12)
        harness.leaseAnswer = .unanswered("timeout")
        harness.run(for: 5)
        harness.leaseAnswer = .heldByAnother
        harness.run(for: 5)
        harness.leaseAnswer = .held
        harness.jobOutcome = { _ in .success(JobReport(summary: "saved", cursor: ["hl-1": 500])) }
        harness.run(for: 10)
        #expect(harness.planner.isLeading && harness.planner.saved > 0 && harness.planner.restored == 1)
        #expect(harness.pastDeadlinesWithNothingDue.isEmpty, "\(harness.pastDeadlinesWithNothingDue)")
    }

    @Test func whileLeadingWithNothingDueTheDeadlineIsTheNextCheck() {
        var harness = SavingTests.leading()
        harness.run(until: 100.5)
        // Lease and history checked at 100: both due again at 101.
        #expect(harness.planner.nextDeadline == 101)
    }

    @Test func jobPollsAreScheduledFromTheLoopsNow() {
        var planner = SnapshotPlanner(settings: PlannerHarness.settings())
        _ = planner.start(now: 10)
        _ = planner.connected(now: 10)
        _ = planner.restoreDecided(reason: "there is no seq map", now: 10)
        _ = planner.storeOpened(now: 10)
        #expect(planner.nextDeadline == 10.1)
        #expect(planner.tick(now: 10.05).isEmpty, "not due yet")
        #expect(planner.tick(now: 10.2) == [.pollJob])
        #expect(abs((planner.nextDeadline ?? 0) - 10.3) < 1e-9)
        #expect(planner.nextDeadline == planner.nextDeadline, "a value, not a clock reading")
    }
}
