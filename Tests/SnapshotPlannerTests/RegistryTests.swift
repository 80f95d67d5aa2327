import Testing

@testable import SnapshotPlanner

/// The schema registry entry: written once ready, refreshed so the bucket's TTL never ages it out,
/// rewritten soon after the schema changes, retried after a failed write.
@Suite struct RegistryTests {
    static let read = RegistrySchedule.schemaReadInterval
    static let refresh = RegistrySchedule.refreshInterval

    @Test func writtenAtStartOnceReady() {
        var harness = PlannerHarness()
        harness.start()
        #expect(harness.planner.isReady)
        #expect(harness.registryWrites.map(\.now) == [100])
        #expect(harness.registryWrites.first?.hash == "h1" && harness.registryWrites.first?.previousHash == nil)
        #expect(harness.reports.contains(.schemaRegistered(hash: "h1", tables: 1)))
    }

    @Test func notWrittenBeforeARestoreIsOver() {
        var harness = PlannerHarness()
        harness.restoreDecision = .success("there is no seq map")
        harness.jobOutcome = { _ in nil }
        harness.start()
        harness.run(for: 10)
        #expect(harness.registryWrites.isEmpty, "the database is not the node's own until the restore is over")
        harness.jobOutcome = { _ in .success(JobReport(summary: "restored", cursor: [:])) }
        harness.run(for: 1)
        #expect(harness.registryWrites.count == 1)
    }

    @Test func refreshedOnTheIntervalWithTheSchemaUnchanged() {
        var harness = PlannerHarness()
        harness.start()
        harness.run(for: 3 * Self.refresh + 1)
        let times = harness.registryWrites.map(\.now)
        #expect(times.count == 4, "\(times)")
        for (earlier, later) in zip(times, times.dropFirst()) {
            #expect(later - earlier >= Self.refresh && later - earlier <= Self.refresh + Self.read, "\(times)")
        }
        #expect(harness.pastDeadlinesWithNothingDue.isEmpty)
    }

    @Test func rewrittenWithinAReadWhenTheHashChanges() {
        var harness = PlannerHarness()
        harness.start()
        harness.run(for: 5)
        harness.localSchema = LocalSchema(hash: "h2", tables: ["items"])
        let changedAt = harness.now
        harness.run(for: Self.read)
        let last = harness.registryWrites.last
        #expect(last?.hash == "h2" && last?.previousHash == "h1")
        #expect(last.map { $0.now - changedAt <= Self.read } == true)
        harness.run(for: Self.refresh + Self.read)
        #expect(harness.registryWrites.last?.previousHash == "h1", "the previous hash is kept on refreshes")
        #expect(harness.reports.contains(.schemaChanged(hash: "h2", tables: 1)))
    }

    @Test func retriedAfterAFailedWrite() {
        var harness = PlannerHarness()
        harness.registryAnswers = false
        harness.start()
        harness.run(for: 12)
        let attempts = harness.registryWrites.map(\.now)
        #expect(attempts.count == 3, "at start, then every \(RegistrySchedule.retryAfterFailedWrite) s: \(attempts)")
        #expect(harness.reports.filter { $0 == .registryNotWritten(error: "timeout", retryIn: RegistrySchedule.retryAfterFailedWrite) }.count == 1, "said once")
        harness.registryAnswers = true
        harness.run(for: RegistrySchedule.retryAfterFailedWrite)
        #expect(harness.registryWrites.count == 4)
        harness.run(for: Self.refresh - 3)
        #expect(harness.registryWrites.count == 4, "written: next due after the refresh interval")
        #expect(harness.pastDeadlinesWithNothingDue.isEmpty)
    }

    @Test func anUnreadableDatabaseIsLoggedOnceAndReadAgain() {
        var harness = PlannerHarness()
        harness.localSchemaError = "database is locked"
        harness.start()
        harness.run(for: 10)
        #expect(harness.registryWrites.isEmpty)
        #expect(harness.reports.filter { $0 == .localSchemaUnreadable(error: "database is locked") }.count == 1)
        harness.localSchemaError = nil
        harness.run(for: Self.read)
        #expect(harness.registryWrites.count == 1)
    }

    @Test func withSnapshotsDisabledItConnectsForTheRegistryAlone() {
        var harness = PlannerHarness(PlannerHarness.settings(enabled: false))
        harness.connects = false
        harness.start()
        #expect(harness.readyReports.count == 1, "ready at once, not waiting for NATS")
        harness.run(for: 3)
        #expect(harness.times(of: .connect).count >= 3)
        #expect(harness.registryWrites.isEmpty)
        harness.connects = true
        harness.run(for: 1)
        #expect(harness.registryWrites.count == 1)
        #expect(!harness.record.contains { if case .startJob = $0.action { true } else { $0.action == .checkLease } }, "no snapshot work")
        #expect(harness.pastDeadlinesWithNothingDue.isEmpty)
    }
}
