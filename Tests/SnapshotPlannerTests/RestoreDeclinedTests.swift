import Testing

@testable import SnapshotPlanner

/// A snapshotter started while the applier and the capturer run (a crash restart, a reload) is told so by
/// its glue (it cannot take the restore lock): it becomes ready without deciding or restoring, and goes on
/// with its other work.
@Suite struct RestoreDeclinedTests {
    @Test func aDeclinedRestoreIsReadyWithoutRestoringAndStillLeads() {
        var planner = SnapshotPlanner(settings: PlannerHarness.settings())
        #expect(planner.start(now: 0).isEmpty)
        #expect(planner.tick(now: 0) == [.connect])
        #expect(planner.connected(now: 0) == [.decideRestore])
        let actions = planner.restoreDeclined("the applier or the capturer is running", now: 0)
        #expect(actions.contains(.reportReady(.restoreDeclined(why: "the applier or the capturer is running"))))
        #expect(actions.contains(.report(.ready(.restoreDeclined(why: "the applier or the capturer is running")))))
        #expect(!actions.contains(.startJob(.restore)) && !actions.contains(.openStore))
        #expect(planner.isReady && planner.runningJob == nil)
        #expect(planner.tick(now: 1).contains(.checkLease), "it takes part in the lease as usual")
        // Answered once: a late decision changes nothing.
        #expect(planner.restoreDecided(reason: "there is no seq map", now: 2).isEmpty)
    }
}
