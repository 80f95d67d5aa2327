import Testing

@testable import SnapshotPlanner

/// A finished job's values (bytes, seconds, cursor, counts) reach its log line as metadata fields, beside
/// the summary: the message stays constant.
@Suite struct JobFieldsTests {
    @Test func aRestoresAndASavesValuesAreFieldsOfTheirLines() {
        var harness = PlannerHarness()
        harness.restoreDecision = .success("there is no seq map")
        let fields = ["bytes": "40960", "download_s": "0.01", "cursor": "hl-1=600", "kept_local_changes": "1"]
        harness.jobOutcome = { _ in .success(JobReport(summary: "from node 2", cursor: ["hl-1": 600], fields: fields)) }
        harness.start()
        harness.run(for: 1)
        let ready = PlannerReport.ready(.restored(summary: "from node 2", fields: fields))
        #expect(harness.reports.contains(ready), "\(harness.reports)")
        #expect(ready.message == "ready: restored the snapshot")
        #expect(ready.metadata["bytes"] == "40960" && ready.metadata["cursor"] == "hl-1=600" && ready.metadata["snapshot"] == "from node 2")
        let saved = PlannerReport.saved(summary: "40 KiB", fields: ["bytes": "40960", "upload_s": "0.02"])
        #expect(saved.message == "saved a snapshot" && saved.metadata["upload_s"] == "0.02" && saved.metadata["snapshot"] == "40 KiB")
    }
}
