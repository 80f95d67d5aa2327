import Testing

@testable import Operability

/// The supervisor's lines about a node catching up with a stream: when it starts, every 10 s, when done.
@Suite struct CatchUpProgressTests {
    @Test func aNodeFarBehindSaysHowItGetsOnAndWhenItIsDone() {
        var progress = CatchUpProgress()
        #expect(progress.observe(stream: "s-1", head: 500, cursor: 0, now: 0) == nil, "a few hundred behind is ordinary traffic")
        #expect(progress.observe(stream: "s-1", head: nil, cursor: 0, now: 0) == nil)
        #expect(progress.observe(stream: "s-1", head: 50_000, cursor: 10_000, now: 100) == "catching up with s-1: 40000 messages behind (cursor 10000, stream at 50000)")
        #expect(progress.observe(stream: "s-1", head: 50_000, cursor: 20_000, now: 105) == nil, "not before 10 s")
        #expect(progress.observe(stream: "s-1", head: 50_000, cursor: 30_000, now: 110)
            == "catching up with s-1: 50% (cursor 30000, stream at 50000, 20000 behind), 2000 messages/s, about 10 s left")
        #expect(progress.observe(stream: "s-2", head: 3, cursor: 3, now: 110) == nil, "streams are apart")
        #expect(progress.observe(stream: "s-1", head: 50_010, cursor: 50_010, now: 118.4) == "caught up with s-1: 40010 messages in 18 s")
        #expect(progress.observe(stream: "s-1", head: 50_020, cursor: 50_010, now: 119) == nil)
    }

    @Test func aCursorThatDoesNotMoveSaysSo() {
        var progress = CatchUpProgress()
        _ = progress.observe(stream: "s", head: 5000, cursor: 0, now: 0)
        #expect(progress.observe(stream: "s", head: 5000, cursor: 0, now: 10) == "catching up with s: 0% (cursor 0, stream at 5000, 5000 behind), 0 messages/s, no progress yet")
        #expect(CatchUpProgress.duration(4000) == "67 min" && CatchUpProgress.duration(3.25) == "3.2 s" && CatchUpProgress.duration(9000) == "2.5 h")
    }
}
