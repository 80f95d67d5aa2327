import Testing

@testable import WorkerRuntime

/// `DatabaseWait`: what a worker waiting for a database lock says, and when (times passed in).
@Suite struct DatabaseWaitTests {
    @Test func aShortWaitIsNeverReported() {
        var wait = DatabaseWait()
        #expect(wait.tried(now: 100) == nil)
        #expect(wait.tried(now: 100.5) == nil)
        #expect(wait.waitedMilliseconds(now: 100.5) == 0)
        #expect(wait.over(now: 100.6) == nil)
        #expect(wait.since == nil)
    }

    @Test func aLongWaitIsReportedAfterASecondThenEveryFiveSecondsAndWhenItEnds() {
        var wait = DatabaseWait()
        var reports: [DatabaseWait.Report] = []
        // Tried every 10 ms for 35 s, as SQLite's busy handler calls it.
        for step in 0...3500 {
            if let report = wait.tried(now: 1000 + Double(step) / 100) { reports.append(report) }
        }
        #expect(reports == [1, 6, 11, 16, 21, 26, 31].map { .waiting(seconds: $0) })
        #expect(wait.waitedMilliseconds(now: 1035) == 35000)
        #expect(wait.over(now: 1035.2) == .resumed(afterSeconds: 35))
        #expect(wait.waitedMilliseconds(now: 1036) == 0)
        // The next wait starts afresh.
        #expect(wait.tried(now: 2000) == nil)
        #expect(wait.tried(now: 2001) == .waiting(seconds: 1))
    }

    @Test func anHourIsStillOnlyAWait() {
        var wait = DatabaseWait()
        _ = wait.tried(now: 0)
        var count = 0
        for second in stride(from: 0.0, through: 3600, by: 0.5) where wait.tried(now: second) != nil { count += 1 }
        #expect(count == 720)
        #expect(wait.waitedMilliseconds(now: 3600) == 3_600_000)
    }
}
