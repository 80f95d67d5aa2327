import Testing

@testable import SnapshotPlanner

/// The start: connecting, deciding on a restore once, restoring, being ready.
@Suite struct StartupTests {
    @Test func disabledIsReadyAtOnceAndOnlyKeepsTheSchemaRegistry() {
        var harness = PlannerHarness(PlannerHarness.settings(enabled: false))
        harness.start()
        #expect(harness.readyReports == [.snapshotsDisabled])
        harness.run(for: 30)
        let snapshotWork = harness.record.filter {
            switch $0.action {
            case .connect, .readLocalSchema, .writeSchemaRegistry, .report: false
            default: true
            }
        }
        #expect(
            snapshotWork.map(\.action) == [.reportReady(.snapshotsDisabled)],
            "the ready report, then nothing but the registry: \(harness.record)")
    }

    @Test func noRestoreNeededIsReadyOnceConnected() {
        var harness = PlannerHarness()
        harness.connects = false
        harness.start()
        harness.run(for: 3.5)
        #expect(harness.times(of: .connect) == [100, 101, 102, 103])
        #expect(harness.reports == [.waiting(for: .nats, cause: "connection refused", retryEvery: 1)], "said once")
        #expect(harness.readyReports.isEmpty)
        harness.connects = true
        harness.run(for: 1)
        #expect(harness.readyReports == [.noRestoreNeeded])
        #expect(harness.reports.contains(.ready(.noRestoreNeeded)))
    }

    @Test func replicateFalseHasNothingToRestore() {
        var harness = PlannerHarness(PlannerHarness.settings(replicate: false))
        harness.start()
        #expect(harness.times(of: .decideRestore).isEmpty)
        #expect(harness.readyReports == [.replicationOff])
    }

    @Test func aNeededRestoreRunsAJobAndItsFailureStopsTheWorker() {
        var harness = PlannerHarness()
        harness.restoreDecision = .success("there is no seq map")
        harness.jobOutcome = { kind in kind == .restore ? .failure(JobFailure(description: "checksum mismatch")) : nil }
        harness.start()
        #expect(harness.planner.runningJob == .restore)
        #expect(harness.reports == [.restoring(.decided("there is no seq map"))])
        harness.run(for: 5)
        #expect(harness.stops == [.restoreFailed(error: "checksum mismatch")])
        #expect(harness.readyReports.isEmpty)
        #expect(harness.times(of: .checkLease).isEmpty)
        #expect(harness.planner.nextDeadline == nil)
    }

    @Test func aRestoreAcceptsGapsThenIsReady() {
        var harness = PlannerHarness()
        harness.restoreDecision = .success("hl-1 starts at message 500, past this node's position 3")
        harness.jobOutcome = { _ in .success(JobReport(summary: "from node 2", cursor: ["hl-1": 600])) }
        harness.start()
        harness.run(for: 1)
        let decided = PlannerReport.RestoreReason.decided("hl-1 starts at message 500, past this node's position 3")
        #expect(harness.reports.prefix(2) == [.restoring(decided), .ready(.restored(summary: "from node 2"))])
        let actions = harness.record.map(\.action)
        let gaps = actions.firstIndex(of: .acceptCoveredGaps)
        let ready = actions.firstIndex { if case .reportReady = $0 { true } else { false } }
        #expect(gaps != nil && ready != nil && gaps! < ready!)
        #expect(harness.readyReports == [.restored(summary: "from node 2")])
        #expect(harness.planner.restored == 1)
    }

    /// The snapshot restored does not cover what the streams no longer hold: the store's newest snapshot is
    /// looked at every few seconds (the lease holder saves after every half max_entries messages), the same
    /// one never restored again; only after `gapCoverWait` is the gap accepted, and the node gets ready.
    @Test func anUncoveredGapWaitsForANewerSnapshotThenIsAccepted() {
        var harness = PlannerHarness()
        harness.restoreDecision = .success("hl-1 starts at message 500, past this node's position 3")
        harness.jobOutcome = { _ in .success(JobReport(summary: "from node 2", cursor: ["hl-1": 300])) }
        harness.newestSnapshot = ["hl-1": 300]
        harness.uncoveredGap = "hl-1 messages 301…499"
        harness.start()
        harness.run(for: 30)
        let uncovered = harness.reports.filter { if case .gapUncovered = $0 { true } else { false } }
        #expect(
            uncovered == [.gapUncovered(gap: "hl-1 messages 301…499", lookEvery: 3, acceptedIn: 60)],
            "said once, with when the gap is accepted: \(harness.reports)")
        #expect(harness.readyReports.isEmpty, "ready while the gap is uncovered")
        #expect(!harness.record.map(\.action).contains(.acceptGaps))
        #expect(harness.record.filter { $0.action == .startJob(.restore) }.count == 1, "the same snapshot restored again")
        let looks = harness.record.filter { $0.action == .readNewestSnapshot }.count
        #expect(looks >= 8 && looks <= 11, "looked \(looks) times in 30 s")
        harness.run(for: 40)
        let actions = harness.record.map(\.action)
        let accepted = actions.firstIndex(of: .acceptGaps)
        let ready = actions.firstIndex { if case .reportReady = $0 { true } else { false } }
        #expect(accepted != nil && ready != nil && accepted! < ready!)
        #expect(harness.record.first { $0.action == .acceptGaps }.map { $0.now >= SnapshotPlanner.gapCoverWait } == true)
        #expect(harness.reports.contains(.ready(.restored(summary: "from node 2"))))
    }

    /// A newer snapshot appears and covers the gap: it is restored, and no gap is ever accepted.
    @Test func aGapANewerSnapshotCoversIsNeverAccepted() {
        var harness = PlannerHarness()
        harness.restoreDecision = .success("hl-1 starts at message 500, past this node's position 3")
        harness.jobOutcome = { _ in .success(JobReport(summary: "from node 2", cursor: ["hl-1": 300])) }
        harness.newestSnapshot = ["hl-1": 300]
        harness.uncoveredGap = "hl-1 messages 301…499"
        harness.start()
        harness.run(for: 7)
        #expect(harness.record.filter { $0.action == .startJob(.restore) }.count == 1)
        harness.newestSnapshot = ["hl-1": 520]
        harness.jobOutcome = { _ in .success(JobReport(summary: "from node 3", cursor: ["hl-1": 520])) }
        harness.uncoveredGap = nil
        harness.run(for: 10)
        #expect(!harness.record.map(\.action).contains(.acceptGaps))
        #expect(harness.record.filter { $0.action == .startJob(.restore) }.count == 2)
        #expect(harness.readyReports == [.restored(summary: "from node 3")])
        #expect(harness.reports.contains(.restoring(.newerSnapshot(gap: "hl-1 messages 301…499"))))
        #expect(harness.planner.nextDeadline != nil)
    }

    /// The store does not answer while the restore waits for cover: the wait goes on to its deadline.
    @Test func anUnansweringStoreDoesNotEndTheWaitEarly() {
        var planner = SnapshotPlanner(settings: PlannerHarness.settings())
        _ = planner.start(now: 0)
        _ = planner.connected(now: 0)
        _ = planner.restoreDecided(reason: "gap", now: 0)
        _ = planner.storeOpened(now: 0)
        #expect(planner.jobFinished(.success(JobReport(summary: "restored", cursor: ["hl-1": 300])), now: 1) == [.acceptCoveredGaps])
        _ = planner.gapsUncovered("hl-1 messages 301…499", now: 1)
        #expect(planner.tick(now: 4) == [.readNewestSnapshot])
        #expect(planner.newestSnapshotUnanswered("timeout", now: 4).isEmpty)
        #expect(planner.nextDeadline == 7)
        #expect(planner.tick(now: 61) == [.readNewestSnapshot])
        #expect(planner.newestSnapshotUnanswered("timeout", now: 61) == [.acceptGaps])
    }

    @Test func gapsThatCannotBeAcceptedStopTheWorker() {
        var planner = SnapshotPlanner(settings: PlannerHarness.settings())
        _ = planner.start(now: 0)
        _ = planner.connected(now: 0)
        _ = planner.restoreDecided(reason: "there is no seq map", now: 0)
        #expect(planner.storeOpened(now: 0).contains(.startJob(.restore)))
        #expect(planner.jobFinished(.success(JobReport(summary: "no snapshot in the store yet", cursor: nil)), now: 1) == [.acceptCoveredGaps])
        #expect(planner.restored == 0)
        #expect(planner.gapsNotAccepted("disk full", now: 1).contains(.stop(.gapsNotStored(error: "disk full"))))
        #expect(!planner.isReady)
    }

    @Test func aRestoreDecisionErrorIsRetriedNotReadAsNoRestore() {
        var harness = PlannerHarness()
        harness.restoreDecision = .failure(RestoreDecisionError(.streamsUnanswered, "JetStream not available"))
        harness.start()
        harness.run(for: 3.5)
        #expect(harness.times(of: .decideRestore) == [100, 101, 102, 103])
        #expect(harness.readyReports.isEmpty)
        #expect(harness.stops.isEmpty)
        #expect(harness.reports == [.waiting(for: .shardStreams, cause: "JetStream not available", retryEvery: 1)])
        harness.restoreDecision = .success("hl-2 starts at message 9, past this node's position 0")
        harness.run(for: 1)
        #expect(harness.times(of: .startJob(.restore)).count == 1)
    }

    @Test func anUnreadableDatabaseStopsTheWorker() {
        var harness = PlannerHarness()
        harness.restoreDecision = .failure(RestoreDecisionError(.localStateUnreadable, "no such table"))
        harness.start()
        #expect(harness.stops == [.restoreUndecidable(error: "no such table")])
        #expect(harness.planner.nextDeadline == nil)
    }

    @Test func theRestoreIsDecidedOnceAndOnlyOpeningTheStoreIsRetried() {
        var harness = PlannerHarness()
        harness.restoreDecision = .success("there is no seq map")
        harness.storeOpens = false
        harness.start()
        harness.run(for: 3.5)
        #expect(harness.times(of: .decideRestore) == [100])
        #expect(harness.times(of: .openStore) == [100, 101, 102, 103])
        #expect(harness.reports == [.waiting(for: .store("nats"), cause: "unreachable", retryEvery: 1)])
        harness.run(for: 20)
        #expect(
            Array(harness.reports.dropFirst()) == [
                .stillWaiting(for: .store("nats"), seconds: 10, cause: "unreachable"),
                .stillWaiting(for: .store("nats"), seconds: 20, cause: "unreachable"),
            ],
            "a wait that lasts is said again every 10 s")
        harness.storeOpens = true
        harness.run(for: 1)
        #expect(harness.times(of: .decideRestore) == [100])
        #expect(harness.times(of: .startJob(.restore)).count == 1)
    }
}
