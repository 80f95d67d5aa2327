import Testing

@testable import WorkerRuntime

@Suite struct LoopScheduleTests {
    /// The livelock of the old loop: a handler whose deadline is "now" at the moment it is read (the
    /// capturer's `max(nextLook, monotonicSeconds())`). Every wait must be followed by a tick, so the loop
    /// never spins on zero-timeout waits without doing the handler's work.
    @Test func aDeadlineReadFromTheClockIsAlwaysTicked() {
        var clock = 100.0
        var schedule = LoopSchedule(now: clock, heartbeatInterval: 1.25)
        _ = schedule.due(now: clock, deadline: nil)  // the first heartbeat
        var ticks = 0
        var zeroWaitsWithoutTick = 0
        for _ in 0..<1000 {
            let deadline = clock  // computed from the clock by the handler
            clock += 0.000_002  // the loop reads the clock a moment later
            let wait = schedule.waitMicroseconds(now: clock, deadline: deadline)
            clock += Double(wait) / 1_000_000 + 0.000_003
            let due = schedule.due(now: clock, deadline: deadline)
            if due.tick { ticks += 1 } else if wait == 0 { zeroWaitsWithoutTick += 1 }
        }
        #expect(ticks == 1000)
        #expect(zeroWaitsWithoutTick == 0)
    }

    @Test func waitsUntilTheEarlierOfDeadlineAndHeartbeatRoundedUp() {
        var schedule = LoopSchedule(now: 0, heartbeatInterval: 1.25)
        _ = schedule.due(now: 0, deadline: nil)
        #expect(schedule.nextHeartbeat == 1.25)
        #expect(schedule.waitMicroseconds(now: 0, deadline: nil) == 1_250_000)
        #expect(schedule.waitMicroseconds(now: 0, deadline: 0.000_400_2) == 401)  // never ends before the deadline
        #expect((250...251).contains(schedule.waitMicroseconds(now: 0, deadline: 0.000_25)))  // a fraction of a millisecond
        #expect(schedule.waitMicroseconds(now: 0, deadline: 0.2) == 200_000)
        #expect(schedule.waitMicroseconds(now: 0, deadline: 5) == 1_250_000)
        #expect(schedule.waitMicroseconds(now: 2, deadline: 1) == 0)
        #expect(schedule.waitMicroseconds(now: 0, deadline: 1e12) == 1_250_000)
    }

    @Test func ticksAtTheHeartbeatAndWhenTheDeadlinePassedOnly() {
        var schedule = LoopSchedule(now: 0, heartbeatInterval: 1)
        #expect(schedule.due(now: 0, deadline: nil) == .init(tick: true, heartbeat: true))
        #expect(schedule.due(now: 0.5, deadline: 0.6) == .init(tick: false, heartbeat: false))
        #expect(schedule.due(now: 0.6, deadline: 0.6) == .init(tick: true, heartbeat: false))
        #expect(schedule.due(now: 0.9, deadline: nil) == .init(tick: false, heartbeat: false))
        #expect(schedule.due(now: 1.0, deadline: nil) == .init(tick: true, heartbeat: true))
        #expect(schedule.nextHeartbeat == 2.0)
    }
}
