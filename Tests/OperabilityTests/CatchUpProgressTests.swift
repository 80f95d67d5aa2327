import Testing

@testable import Operability

/// The supervisor's lines about a node catching up with a stream: when it starts, every 10 s, when done.
@Suite struct CatchUpProgressTests {
    @Test func aNodeFarBehindSaysHowItGetsOnAndWhenItIsDone() {
        var progress = CatchUpProgress()
        #expect(progress.observe(stream: "s-1", head: 500, cursor: 0, now: 0) == nil, "a few hundred behind is ordinary traffic")
        #expect(progress.observe(stream: "s-1", head: nil, cursor: 0, now: 0) == nil)
        #expect(progress.observe(stream: "s-1", head: 50_000, cursor: 10_000, now: 100) == .behind(stream: "s-1", behind: 40_000, cursor: 10_000, head: 50_000))
        #expect(progress.observe(stream: "s-1", head: 50_000, cursor: 20_000, now: 105) == nil, "not before 10 s")
        #expect(
            progress.observe(stream: "s-1", head: 50_000, cursor: 30_000, now: 110)
                == .progress(stream: "s-1", percent: 50, cursor: 30_000, head: 50_000, behind: 20_000, messagesPerSecond: 2000, secondsLeft: 10))
        #expect(progress.observe(stream: "s-2", head: 3, cursor: 3, now: 110) == nil, "streams are apart")
        #expect(progress.observe(stream: "s-1", head: 50_010, cursor: 50_010, now: 118.5) == .caughtUp(stream: "s-1", applied: 40_010, seconds: 18.5))
        #expect(progress.observe(stream: "s-1", head: 50_020, cursor: 50_010, now: 119) == nil)
    }

    @Test func aCursorThatDoesNotMoveSaysSo() {
        var progress = CatchUpProgress()
        _ = progress.observe(stream: "s", head: 5000, cursor: 0, now: 0)
        #expect(
            progress.observe(stream: "s", head: 5000, cursor: 0, now: 10)
                == .progress(stream: "s", percent: 0, cursor: 0, head: 5000, behind: 5000, messagesPerSecond: 0, secondsLeft: nil))
        #expect(CatchUpProgress.duration(4000) == "67 min" && CatchUpProgress.duration(3.25) == "3.2 s" && CatchUpProgress.duration(9000) == "2.5 h")
    }

    @Test func eachReportIsAConstantMessageWithItsValuesAsMetadata() {
        let reports: [CatchUpProgress.Report] = [
            .behind(stream: "s-1", behind: 40_000, cursor: 10_000, head: 50_000),
            .progress(stream: "s-1", percent: 50, cursor: 30_000, head: 50_000, behind: 20_000, messagesPerSecond: 2000, secondsLeft: 10),
            .caughtUp(stream: "s-1", applied: 40_010, seconds: 18.5),
        ]
        #expect(Set(reports.map(\.message)).count == 3)
        for report in reports { #expect(!report.message.contains("s-1") && report.metadata["stream"] == "s-1", "\(report)") }
        #expect(reports[0].metadata == ["stream": "s-1", "behind": "40000", "cursor": "10000", "stream_at": "50000"])
        #expect(reports[1].metadata["left"] == "10 s" && reports[1].metadata["messages_per_s"] == "2000" && reports[1].metadata["percent"] == "50")
        #expect(reports[2].metadata == ["stream": "s-1", "applied": "40010", "took": "19 s"])
    }
}
