import Testing

@testable import SnapshotPlanner

/// A restore that refuses the store's snapshot (unsigned, badly signed, not what its signed metadata says)
/// does not stop the worker (a restart loop that ends the node) and does not give up: it says why once, at
/// error level, shows it in the status, and tries again every 30 s until a trusted snapshot is there.
@Suite struct RefusedSnapshotTests {
    @Test func aRefusedSnapshotIsLookedForAgainSlowlyAndNeverStopsTheWorker() {
        var harness = PlannerHarness()
        harness.restoreDecision = .success("there is no seq map")
        var refusals = 0
        harness.jobOutcome = { kind in
            guard kind == .restore else { return nil }
            refusals += 1
            return refusals <= 3
                ? .failure(JobFailure(description: "the snapshot carries no signature", refusedSnapshot: true))
                : .success(JobReport(summary: "restored the snapshot of node 2", cursor: ["hl-1": 9]))
        }
        harness.start()
        harness.run(for: 65)
        #expect(harness.stops.isEmpty, "\(harness.stops)")
        #expect(harness.readyReports.isEmpty, "not ready: the applier must not start into the gap")
        let starts = harness.times(of: .startJob(.restore))
        #expect(starts.count == 3, "tried at 0, 30 and 60 s: \(starts)")
        #expect(zip(starts, starts.dropFirst()).allSatisfy { $1 - $0 >= 29.9 }, "\(starts)")
        let refused = PlannerReport.snapshotRefused(error: "the snapshot carries no signature", retryEvery: 30)
        #expect(harness.reports.filter { $0 == refused }.count == 1, "said once while it does not change: \(harness.reports)")
        #expect(harness.reports.filter { $0 == .restoring(.decided("there is no seq map")) }.count == 3, "each retry keeps the decision's reason")
        harness.run(for: 35)
        #expect(harness.readyReports.count == 1, "a trusted snapshot, once there, is restored: \(harness.reports)")
    }
}

/// A restore that found no disk space for itself refuses the start (the node stops with 78) instead of
/// failing (status 1: the supervisor restarts the snapshotter into the same full disk, then exits 1, which
/// systemd restarts forever).
@Suite struct RestoreWithoutSpaceTests {
    @Test func aRestoreWithoutDiskSpaceRefusesTheStartAndIsNotRetried() {
        var harness = PlannerHarness()
        harness.restoreDecision = .success("there is no seq map")
        let said = "no disk space for the snapshot restore on the filesystem holding /var/lib/db/node.db, 4096 bytes free (SQLite error 13 / ENOSPC): …"
        harness.jobOutcome = { kind in kind == .restore ? .failure(JobFailure(description: said, diskFull: true)) : nil }
        harness.start()
        harness.run(for: 65)
        #expect(harness.stops.isEmpty, "\(harness.stops)")
        #expect(harness.refusals == [.noSpaceForRestore(error: said)], "\(harness.refusals)")
        #expect(harness.times(of: .startJob(.restore)).count == 1, "not retried")
        #expect(harness.readyReports.isEmpty)
        let text = "\(PlannerAction.Refusal.noSpaceForRestore(error: said))"
        #expect(text.contains("the database is unchanged") && text.contains("/var/lib/db/node.db") && text.contains("SQLite error 13"), "\(text)")
    }
}
