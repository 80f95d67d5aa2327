import TestSupport
import Testing

/// The fault suite's plan and schedule, without processes.
@Suite struct FaultPlanTests {
    var settings: FaultPlan.Settings {
        var settings = FaultPlan.Settings()
        settings.killRounds = 3
        settings.pauses = 4
        settings.restores = 1
        settings.gapRestores = 1
        return settings
    }

    @Test func aSeedGivesTheSamePlanAndAnotherSeedAnother() {
        #expect(FaultPlan(seed: 7, settings: settings).faults == FaultPlan(seed: 7, settings: settings).faults)
        #expect(FaultPlan(seed: 7, settings: settings).faults != FaultPlan(seed: 8, settings: settings).faults)
    }

    @Test func everyKillRoundKillsEveryProcessTypeOnceInItsOwnOrder() {
        let plan = FaultPlan(seed: 42, settings: settings)
        let kills = plan.faults.compactMap { if case .kill(let target) = $0.kind { target } else { nil } }
        #expect(kills.count == 3 * FaultTarget.allCases.count)
        for round in 0..<3 {
            #expect(Set(kills[round * 6..<(round + 1) * 6]) == Set(FaultTarget.allCases))
        }
        let orders = (0..<3).map { Array(kills[$0 * 6..<($0 + 1) * 6]) }
        #expect(Set(orders.map { $0.map(\.rawValue).joined() }).count > 1, "every round killed in the same order")
    }

    @Test func thePlanHoldsWhatTheSettingsAskOneFaultAtATime() {
        let plan = FaultPlan(seed: 3, settings: settings)
        let families = Dictionary(grouping: plan.faults, by: \.kind.family).mapValues(\.count)
        #expect(families == ["kill": 18, "pause": 4, "partition": 1, "diskFull": 1, "restore": 1, "gapRestore": 1])
        #expect(plan.faults.allSatisfy { (0..<3).contains($0.node) })
        #expect(plan.faults.allSatisfy { if case .pause(.supervisor) = $0.kind { false } else { true } })
        for (earlier, later) in zip(plan.faults, plan.faults.dropFirst()) {
            #expect(later.at >= earlier.at + earlier.duration + settings.gap.lowerBound)
        }
        #expect(plan.end == plan.faults.map { $0.at + $0.duration }.max())
    }

    @Test func theScheduleInjectsThenHealsAtTheirTimes() {
        let pause = Fault(kind: .pause(.applier), node: 1, at: 1, duration: 2)
        let kill = Fault(kind: .kill(.broker), node: 0, at: 4, duration: 0)
        var schedule = FaultSchedule(FaultPlan(faults: [pause, kill]))
        #expect(schedule.due(now: 0.5) == [])
        schedule.done(now: 0.5)  // nothing was due: no delay
        #expect(schedule.due(now: 1) == [.inject(pause)])
        schedule.done(now: 1)
        #expect(schedule.due(now: 2.9) == [])
        schedule.done(now: 2.9)
        #expect(schedule.due(now: 3) == [.heal(pause)])
        schedule.done(now: 3)
        #expect(schedule.due(now: 3.5) == [])
        #expect(schedule.due(now: 4) == [.inject(kill)])
        schedule.done(now: 4)
        #expect(schedule.isFinished)
    }

    @Test func aRunBehindThePlanKeepsEveryFaultsLengthAndGap() {
        let restore = Fault(kind: .restoreWithoutSeqMap, node: 2, at: 1, duration: 0)
        let partition = Fault(kind: .partition, node: 0, at: 3, duration: 5)
        var schedule = FaultSchedule(FaultPlan(faults: [restore, partition]))
        #expect(schedule.due(now: 1) == [.inject(restore)])
        schedule.done(now: 11)  // the restore took 10 s
        #expect(schedule.due(now: 12.9) == [])
        #expect(schedule.due(now: 13) == [.inject(partition)])
        schedule.done(now: 13)
        #expect(schedule.due(now: 17.9) == [])
        #expect(schedule.due(now: 18) == [.heal(partition)])
    }
}
