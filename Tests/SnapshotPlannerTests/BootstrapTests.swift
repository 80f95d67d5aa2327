import Testing

@testable import SnapshotPlanner

/// A node that needs its rows from a snapshot: a deleted database (refused without a snapshot) and a new
/// node with an empty database (waits loudly, asking the lease holder, without one).
@Suite struct BootstrapTests {
    @Test func whoNeedsASnapshot() {
        #expect(Bootstrap.needed(databaseCreated: true, userTables: 0, streamMessages: 0) == .missingDatabase)
        #expect(Bootstrap.needed(databaseCreated: true, userTables: 3, streamMessages: 9) == .missingDatabase, "created, not yet restored")
        #expect(Bootstrap.needed(databaseCreated: false, userTables: 0, streamMessages: 12) == .emptyDatabase(streamMessages: 12))
        #expect(Bootstrap.needed(databaseCreated: false, userTables: 0, streamMessages: 0) == nil, "a cluster that never replicated: nothing to miss")
        #expect(Bootstrap.needed(databaseCreated: false, userTables: 1, streamMessages: 12) == nil, "a node with its tables replicates as usual")
    }

    @Test func aDeletedDatabaseWithASnapshotIsRestoredAndReady() {
        var harness = PlannerHarness()
        harness.bootstrap = .missingDatabase
        harness.jobOutcome = { _ in .success(JobReport(summary: "restored the snapshot of node 2", cursor: ["hl-1": 7])) }
        harness.start()
        harness.run(for: 1)
        #expect(harness.reports.first == .restoring(.bootstrap(.missingDatabase, also: nil)), "\(harness.reports)")
        #expect(harness.readyReports.count == 1)
        #expect(harness.refusals.isEmpty)
    }

    @Test func aDeletedDatabaseWithoutASnapshotIsRefusedNotRestarted() {
        var harness = PlannerHarness()
        harness.bootstrap = .missingDatabase
        harness.restoreDecision = .success("there is no seq map")
        harness.jobOutcome = { _ in .success(JobReport(summary: "no snapshot in the store yet", cursor: nil)) }
        harness.start()
        harness.run(for: 5)
        #expect(harness.refusals == [.noSnapshotForMissingDatabase(store: "nats")])
        #expect(harness.stops.isEmpty && harness.readyReports.isEmpty)
        #expect(harness.planner.nextDeadline == nil)
    }

    @Test func aNewEmptyNodeWithoutASnapshotAsksTheLeaseHolderAndWaitsLoudlyThenRestores() {
        var harness = PlannerHarness()
        harness.bootstrap = .emptyDatabase(streamMessages: 40)
        var snapshots = 0
        harness.jobOutcome = { _ in
            snapshots == 0 ? .success(JobReport(summary: "none", cursor: nil)) : .success(JobReport(summary: "restored", cursor: ["hl-1": 40]))
        }
        harness.start()
        harness.run(for: 25)
        let expected: [PlannerReport] = [
            .restoring(.bootstrap(.emptyDatabase(streamMessages: 40), also: nil)), .waitingForSnapshot(store: "nats", lookEvery: 3),
        ]
        #expect(Array(harness.reports.prefix(2)) == expected)
        #expect(harness.readyReports.isEmpty, "never ready without the rows")
        #expect(harness.refusals.isEmpty && harness.stops.isEmpty)
        let asks = harness.times(of: .requestSnapshot)
        #expect(asks.count >= 8, "asked again every 3 s (the request ages out with the lease bucket's TTL): \(asks)")
        let still = harness.reports { if case .stillWaitingForSnapshot(let seconds, let cause) = $0 { (seconds, cause) } else { nil } }
        #expect(still.count == 2, "said about every 10 s: \(still)")
        #expect(still.last.map { $0 == (18, PlannerReport.SnapshotWaitCause.noSnapshotYet) } == true, "\(still)")
        harness.snapshotRequestError = "timeout"
        harness.run(for: 12)
        #expect(harness.reports.last == .stillWaitingForSnapshot(seconds: 36, cause: .requestFailed(error: "timeout")), "the cause is said: \(harness.reports)")
        snapshots = 1
        harness.newestSnapshot = ["hl-1": 40]
        harness.run(for: 4)
        #expect(harness.reports.contains { if case .restoring(.snapshotArrived) = $0 { true } else { false } }, "\(harness.reports)")
        #expect(harness.readyReports.count == 1)
        #expect(harness.planner.restored == 1)
    }

    @Test func theLeaseHolderAnswersEachRequestWithOneSave() {
        var harness = PlannerHarness(PlannerHarness.settings(leaseTTL: 3, interval: nil))
        harness.newestSnapshot = nil
        harness.start()
        harness.run(for: 5)
        #expect(harness.planner.isLeading)
        #expect(harness.saveStarts.isEmpty)
        harness.snapshotRequest = "node 4 on host-b, pid 77, since 1"
        harness.run(for: 5)
        #expect(harness.saveStarts.count == 1, "one save for the request: \(harness.saveStarts)")
        #expect(harness.reports.contains(.saving(.nodeWaiting(request: "node 4 on host-b, pid 77, since 1"))))
        harness.run(for: 10)
        #expect(harness.saveStarts.count == 1, "the same request is answered once")
        harness.snapshotRequest = "node 5 on host-c, pid 9, since 2"
        harness.run(for: 3)
        #expect(harness.saveStarts.count == 2)
    }

    @Test func aNodeThatDoesNotHoldTheLeaseIgnoresRequests() {
        var harness = PlannerHarness()
        harness.leaseAnswer = .heldByAnother
        harness.snapshotRequest = "node 4"
        harness.start()
        harness.run(for: 20)
        #expect(harness.saveStarts.isEmpty)
        #expect(harness.times(of: .readSnapshotRequest).isEmpty)
    }
}
