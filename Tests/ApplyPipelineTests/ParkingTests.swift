import IPC
import Testing

@testable import ApplyPipeline

/// What happens to a message that cannot be applied: parked at once, parked after retries, or retried for
/// as long as it takes; and that one stream's failing message holds back no other stream.
@Suite struct ParkingTests {
    typealias Action = ApplyPipeline.Action

    /// The parking a `park` action asks for (the last action, as operations always are).
    static func parking(_ actions: [Action], sourceLocation: SourceLocation = #_sourceLocation) throws -> ApplyPipeline.Parking {
        guard case .park(let parking) = actions.last else {
            Issue.record("expected a park as the last action, got \(actions)", sourceLocation: sourceLocation)
            throw ApplyPipelineTests.GroupMissing()
        }
        return parking
    }

    static func isPark(_ action: Action?) -> Bool { if case .park = action { true } else { false } }

    @Test(arguments: [
        ApplyFailure(kind: .undecodable, reason: "not a change batch"),
        ApplyFailure(kind: .schemaMissing, reason: "no table t"),
        ApplyFailure(kind: .keyMismatch, reason: "key (a) is not (b)"),
    ])
    func aMessageThatCannotApplyHereIsParkedAtOnceAndTheStreamGoesOn(failure: ApplyFailure) throws {
        var pipeline = ApplyPipelineTests.pipeline(cursor: ["s": 4])
        let group = try ApplyPipelineTests.group(pipeline.received(frame: [ApplyPipelineTests.delivery("s", 5)], now: 0))
        let parking = try Self.parking(pipeline.applyFailed(group, failure, now: 0))
        #expect(parking.delivery == ApplyPipelineTests.delivery("s", 5))
        #expect(parking.group.cursor == ["s": 5] && parking.attempts == 1 && parking.failure == failure)
        // Not past it until the parking is committed.
        #expect(pipeline.cursor == ["s": 4])
        _ = pipeline.received(frame: [ApplyPipelineTests.delivery("s", 6)], now: 0)
        let actions = pipeline.parked(parking, now: 0)
        #expect(actions.prefix(3) == [.report(.parked(parking)), .acknowledge([.init(stream: "s", sequence: 5)]), .grantCredit(1)])
        #expect(pipeline.cursor == ["s": 5] && pipeline.storedCursor == ["s": 5])
        #expect(ApplyPipelineTests.sequences(try ApplyPipelineTests.group(actions)) == [6])
        #expect(pipeline.parkedMessages == 1 && pipeline.parkedWaiting == 1)
    }

    @Test func aConstraintIsRetriedThreeTimesThenParked() throws {
        var pipeline = ApplyPipelineTests.pipeline()
        let constraint = ApplyFailure(kind: .database(2067), reason: "UNIQUE constraint failed: t.name")
        var group = try ApplyPipelineTests.group(pipeline.received(frame: [ApplyPipelineTests.delivery("s", 1)], now: 0))
        var now = 0.0
        for retry in 0..<3 {
            let actions = pipeline.applyFailed(group, constraint, now: now)
            #expect(!actions.contains(where: Self.isPark), "parked before retry \(retry + 1)")
            now = try #require(pipeline.nextDeadline)
            group = try ApplyPipelineTests.group(pipeline.tick(now: now))
        }
        #expect(now == 0.25 + 0.5 + 1)
        let parking = try Self.parking(pipeline.applyFailed(group, constraint, now: now))
        #expect(parking.attempts == 4)
        #expect(pipeline.cursor == ["s": 0])
        _ = pipeline.parked(parking, now: now)
        #expect(pipeline.cursor == ["s": 1])
    }

    @Test(arguments: [5, 10, 13, 1])
    func aDatabaseThatRefusesWritesIsWaitedForNeverParked(code: Int32) throws {
        var pipeline = ApplyPipelineTests.pipeline()
        var group = try ApplyPipelineTests.group(pipeline.received(frame: [ApplyPipelineTests.delivery("s", 1)], now: 0))
        var now = 0.0
        for _ in 0..<20 {
            let actions = pipeline.applyFailed(group, .init(kind: .database(code), reason: "SQLite error \(code)"), now: now)
            #expect(!actions.contains(where: Self.isPark))
            now = try #require(pipeline.nextDeadline)
            group = try ApplyPipelineTests.group(pipeline.tick(now: now))
        }
        #expect(pipeline.cursor == ["s": 0] && pipeline.parkedMessages == 0)
    }

    @Test func aStreamWaitingForARetryHoldsBackNoOtherStream() throws {
        var pipeline = ApplyPipelineTests.pipeline(cursor: ["a": 0, "b": 0])
        let both = try ApplyPipelineTests.group(pipeline.received(frame: [ApplyPipelineTests.delivery("a", 1)], now: 0))
        _ = pipeline.received(frame: [ApplyPipelineTests.delivery("b", 1)], now: 0)
        // a1 alone in the first group; b1 came while it was applied.
        #expect(ApplyPipelineTests.sequences(both) == [1])
        let failing = pipeline.applyFailed(both, ApplyPipelineTests.busy("database is locked"), now: 0)
        #expect(failing.first == .report(.cannotApply(reason: "database is locked", retryIn: 0.25)))
        let b1 = try ApplyPipelineTests.group(failing)
        #expect(b1.deliveries == [ApplyPipelineTests.delivery("b", 1)] && b1.cursor == ["a": 0, "b": 1])
        _ = pipeline.received(frame: [ApplyPipelineTests.delivery("a", 2)], now: 0.1)
        let afterB1 = pipeline.applied(b1, wroteCursor: true, now: 0.1)
        #expect(afterB1.prefix(2) == [.acknowledge([.init(stream: "b", sequence: 1)]), .grantCredit(1)])
        // a waits (a2 behind a1); b's next frame applies meanwhile, in full.
        #expect(!afterB1.contains { if case .apply = $0 { true } else { false } })
        _ = pipeline.seqMapMirrored(["a": 0, "b": 1], now: 0.1)
        let b23 = try ApplyPipelineTests.group(pipeline.received(frame: [ApplyPipelineTests.delivery("b", 2), ApplyPipelineTests.delivery("b", 3)], now: 0.2))
        #expect(ApplyPipelineTests.sequences(b23) == [2, 3] && b23.cursor == ["a": 0, "b": 3])
        #expect(pipeline.applied(b23, wroteCursor: true, now: 0.2).last == .mirrorSeqMap(["a": 0, "b": 3]))
        _ = pipeline.seqMapMirrored(["a": 0, "b": 3], now: 0.2)
        #expect(pipeline.cursor == ["a": 0, "b": 3])
        #expect(pipeline.nextDeadline == 0.25)
        // a's retry: one at a time until its queue is empty.
        let a1 = try ApplyPipelineTests.group(pipeline.tick(now: 0.25))
        #expect(a1.deliveries == [ApplyPipelineTests.delivery("a", 1)])
        let afterA1 = pipeline.applied(a1, wroteCursor: true, now: 0.25)
        #expect(afterA1.prefix(3) == [.report(.applyingAgain(after: "database is locked")), .acknowledge([.init(stream: "a", sequence: 1)]), .grantCredit(1)])
        #expect(try ApplyPipelineTests.group(afterA1).deliveries == [ApplyPipelineTests.delivery("a", 2)])
    }

    @Test func aFailedGroupOfSeveralStreamsFindsTheFailingMessageAndParksOnlyIt() throws {
        var pipeline = ApplyPipelineTests.pipeline(cursor: [:])
        let first = try ApplyPipelineTests.group(pipeline.received(frame: [ApplyPipelineTests.delivery("a", 1)], now: 0))
        _ = pipeline.received(frame: [ApplyPipelineTests.delivery("a", 2), ApplyPipelineTests.delivery("a", 3)], now: 0)
        _ = pipeline.received(frame: [ApplyPipelineTests.delivery("b", 1)], now: 0)
        let all = try ApplyPipelineTests.group(pipeline.applied(first, wroteCursor: true, now: 0))
        #expect(all.deliveries.count == 3 && all.cursor == ["a": 3, "b": 1])
        let undecodable = ApplyFailure(kind: .undecodable, reason: "a2 is garbage")
        let a2 = try ApplyPipelineTests.group(pipeline.applyFailed(all, undecodable, now: 0))
        #expect(a2.deliveries == [ApplyPipelineTests.delivery("a", 2)])
        // a2 is the culprit: parked; its frame is not done (a3), so no credit yet.
        let parking = try Self.parking(pipeline.applyFailed(a2, undecodable, now: 0))
        let afterPark = pipeline.parked(parking, now: 0)
        #expect(afterPark.prefix(2) == [.report(.parked(parking)), .acknowledge([.init(stream: "a", sequence: 2)])])
        #expect(!afterPark.contains { if case .grantCredit = $0 { true } else { false } })
        let a3 = try ApplyPipelineTests.group(afterPark)
        #expect(a3.deliveries == [ApplyPipelineTests.delivery("a", 3)])
        let afterA3 = pipeline.applied(a3, wroteCursor: true, now: 0)
        #expect(afterA3.prefix(2) == [.acknowledge([.init(stream: "a", sequence: 3)]), .grantCredit(1)])
        let b1 = try ApplyPipelineTests.group(afterA3)
        #expect(b1.deliveries == [ApplyPipelineTests.delivery("b", 1)])
        #expect(pipeline.applied(b1, wroteCursor: true, now: 0).prefix(2) == [.acknowledge([.init(stream: "b", sequence: 1)]), .grantCredit(1)])
        #expect(pipeline.cursor == ["a": 3, "b": 1] && pipeline.queuedDeliveries == 0)
    }

    @Test func aParkingThatFailsKeepsTheCursorAndIsTriedAgain() throws {
        var pipeline = ApplyPipelineTests.pipeline(cursor: ["s": 1])
        let group = try ApplyPipelineTests.group(pipeline.received(frame: [ApplyPipelineTests.delivery("s", 2)], now: 0))
        let parking = try Self.parking(pipeline.applyFailed(group, .init(kind: .schemaMissing, reason: "no table t"), now: 0))
        let failed = pipeline.parkFailed(parking, reason: "disk I/O error", now: 0)
        #expect(failed == [.report(.cannotApply(reason: "cannot park message 2 of s: disk I/O error", retryIn: 0.25))])
        #expect(pipeline.cursor == ["s": 1] && pipeline.parkedWaiting == 0)
        #expect(pipeline.drain(now: 0.1).isEmpty, "nothing past the unparked message is stored")
        #expect(pipeline.storedCursor == ["s": 1])
    }

    @Test func parkedMessagesAreRetriedWhenTheSchemaOrTheRequestChanges() throws {
        var pipeline = ApplyPipeline(cursor: ["s": 0], parked: 2, settings: .init(snapshotsEnabled: true))
        // The first look after a start retries what was parked before it.
        #expect(pipeline.observed(schemaVersion: 7, retryRequest: nil, now: 0) == [.retryParked])
        // Nothing else starts while it runs.
        #expect(pipeline.received(frame: [ApplyPipelineTests.delivery("s", 1)], now: 0).isEmpty)
        let afterRetry = pipeline.parkedRetried(applied: 0, remaining: 2, now: 0)
        #expect(afterRetry.first == .report(.parkedRetried(applied: 0, remaining: 2)))
        _ = pipeline.applied(try ApplyPipelineTests.group(afterRetry), wroteCursor: true, now: 0)
        _ = pipeline.seqMapMirrored(["s": 1], now: 0)
        #expect(pipeline.observed(schemaVersion: 7, retryRequest: nil, now: 1).isEmpty)
        #expect(pipeline.observed(schemaVersion: 8, retryRequest: nil, now: 2) == [.retryParked])
        _ = pipeline.parkedRetried(applied: 1, remaining: 1, now: 2)
        #expect(pipeline.observed(schemaVersion: 8, retryRequest: "1", now: 3) == [.retryParked])
        _ = pipeline.parkedRetried(applied: 1, remaining: 0, now: 3)
        // Nothing parked: a change retries nothing.
        #expect(pipeline.observed(schemaVersion: 9, retryRequest: "2", now: 4).isEmpty)
        #expect(pipeline.parkedWaiting == 0)
    }
}
