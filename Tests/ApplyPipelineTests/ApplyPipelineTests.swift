import IPC
import Testing

@testable import ApplyPipeline

/// The applier's decisions, driven event by event with made-up times: no database, no broker, no clock.
@Suite struct ApplyPipelineTests {
    typealias Action = ApplyPipeline.Action

    static func delivery(_ stream: String, _ sequence: UInt64) -> DataMessage.Delivery {
        DataMessage.Delivery(stream: stream, sequence: sequence, subject: "s-1.1", payload: [UInt8(truncatingIfNeeded: sequence)])
    }

    static func pipeline(cursor: StreamCursor = ["s": 0], snapshots: Bool = true) -> ApplyPipeline {
        ApplyPipeline(cursor: cursor, settings: .init(snapshotsEnabled: snapshots))
    }

    /// The group an `apply` action asks for (the last action, as operations always are).
    static func group(_ actions: [Action], sourceLocation: SourceLocation = #_sourceLocation) throws -> ApplyPipeline.ApplyGroup {
        guard case .apply(let group) = actions.last else {
            Issue.record("expected an apply as the last action, got \(actions)", sourceLocation: sourceLocation)
            throw GroupMissing()
        }
        return group
    }

    struct GroupMissing: Error {}

    /// A failure of the database, not the message (SQLITE_BUSY): retried for as long as it takes.
    static func busy(_ reason: String) -> ApplyFailure { .init(kind: .database(5), reason: reason) }

    static func sequences(_ group: ApplyPipeline.ApplyGroup) -> [UInt64] { group.deliveries.map(\.sequence) }

    @Test func everythingQueuedWhileApplyingGoesInOneGroup() throws {
        var pipeline = Self.pipeline()
        let first = try Self.group(pipeline.received(frame: [Self.delivery("s", 1), Self.delivery("s", 2)], now: 0))
        #expect(Self.sequences(first) == [1, 2])
        #expect(first.cursor == ["s": 2])
        // Two more frames arrive while the first group is being applied: nothing new is started.
        #expect(pipeline.received(frame: [Self.delivery("s", 3)], now: 0).isEmpty)
        #expect(pipeline.received(frame: [Self.delivery("s", 4), Self.delivery("s", 5)], now: 0).isEmpty)
        let actions = pipeline.applied(first, wroteCursor: true, now: 0)
        #expect(actions.dropLast() == [.acknowledge([.init(stream: "s", sequence: 2)]), .grantCredit(1)])
        let second = try Self.group(actions)
        #expect(Self.sequences(second) == [3, 4, 5])
        #expect(pipeline.applied(second, wroteCursor: true, now: 0).prefix(2) == [.acknowledge([.init(stream: "s", sequence: 5)]), .grantCredit(2)])
        #expect(pipeline.queuedDeliveries == 0)
    }

    @Test func afterAFailureOneAtATimeSoAGoodMessageInTheSameFrameIsNotHeldBack() throws {
        var pipeline = Self.pipeline()
        let both = try Self.group(pipeline.received(frame: [Self.delivery("s", 1), Self.delivery("s", 2)], now: 0))
        let good = try Self.group(pipeline.applyFailed(both, Self.busy("cannot decode 2"), now: 0))
        #expect(Self.sequences(good) == [1])
        let afterGood = pipeline.applied(good, wroteCursor: true, now: 0)
        // Applied and acknowledged, but its frame is not complete yet: no credit.
        #expect(afterGood.first == .acknowledge([.init(stream: "s", sequence: 1)]))
        #expect(!afterGood.contains(.grantCredit(1)))
        #expect(pipeline.cursor == ["s": 1])
        let bad = try Self.group(afterGood)
        #expect(Self.sequences(bad) == [2])
        let failed = pipeline.applyFailed(bad, Self.busy("cannot decode 2"), now: 0)
        #expect(failed.first == .report(.cannotApply(reason: "cannot decode 2", retryIn: 0.25)))
        // While it waits for the retry, the seq map catches up with what was applied.
        #expect(failed.last == .mirrorSeqMap(["s": 1]))
        _ = pipeline.seqMapMirrored(["s": 1], now: 0)
        #expect(pipeline.cursor == ["s": 1])
        #expect(pipeline.failures == 1)
        // What arrives meanwhile also goes one at a time until the queue has drained; then everything
        // queued goes in one group again.
        _ = pipeline.received(frame: [Self.delivery("s", 3)], now: 0.1)
        let retried = try Self.group(pipeline.tick(now: 0.25))
        let actions = pipeline.applied(retried, wroteCursor: true, now: 0.3)
        #expect(actions.prefix(3) == [.report(.applyingAgain(after: "cannot decode 2")), .acknowledge([.init(stream: "s", sequence: 2)]), .grantCredit(1)])
        let third = try Self.group(actions)
        #expect(Self.sequences(third) == [3])
        #expect(pipeline.applied(third, wroteCursor: true, now: 0.3).prefix(2) == [.acknowledge([.init(stream: "s", sequence: 3)]), .grantCredit(1)])
        #expect(pipeline.queuedDeliveries == 0)
        _ = pipeline.seqMapMirrored(["s": 3], now: 0.3)
        #expect(Self.sequences(try Self.group(pipeline.received(frame: [Self.delivery("s", 4), Self.delivery("s", 5)], now: 0.3))) == [4, 5])
    }

    @Test func creditIsOnePerFrameOnceItsLastMessageIsApplied() throws {
        var pipeline = Self.pipeline(cursor: [:])
        let group = try Self.group(pipeline.received(frame: [Self.delivery("a", 1), Self.delivery("b", 1)], now: 0))
        _ = pipeline.received(frame: [Self.delivery("a", 2)], now: 0)
        _ = pipeline.received(frame: [Self.delivery("b", 2), Self.delivery("a", 3)], now: 0)
        let next = try Self.group(pipeline.applied(group, wroteCursor: true, now: 0))
        #expect(next.cursor == ["a": 3, "b": 2])
        #expect(
            pipeline.applied(next, wroteCursor: true, now: 0).prefix(2) == [
                .acknowledge([.init(stream: "a", sequence: 3), .init(stream: "b", sequence: 2)]), .grantCredit(2),
            ])
    }

    @Test func backoffDoublesToThirtySecondsAndResetsAfterASuccess() throws {
        var pipeline = Self.pipeline()
        var group = try Self.group(pipeline.received(frame: [Self.delivery("s", 1)], now: 0))
        var now = 0.0
        var waits: [Double] = []
        for attempt in 0..<9 {
            let actions = pipeline.applyFailed(group, Self.busy("no such table"), now: now)
            // The same reason is reported once, not at every retry.
            #expect(actions.isEmpty == (attempt > 0))
            let deadline = try #require(pipeline.nextDeadline)
            waits.append(deadline - now)
            #expect(pipeline.tick(now: deadline - 0.01).isEmpty)
            now = deadline
            group = try Self.group(pipeline.tick(now: now))
        }
        #expect(waits == [0.25, 0.5, 1, 2, 4, 8, 16, 30, 30])
        #expect(pipeline.applied(group, wroteCursor: true, now: now).first == .report(.applyingAgain(after: "no such table")))
        _ = pipeline.seqMapMirrored(["s": 1], now: now)
        let next = try Self.group(pipeline.received(frame: [Self.delivery("s", 2)], now: now))
        #expect(pipeline.applyFailed(next, Self.busy("no such table"), now: now) == [.report(.cannotApply(reason: "no such table", retryIn: 0.25))])
        #expect(pipeline.nextDeadline == now + 0.25)
    }

    @Test func theCursorIsNeverAheadOfWhatWasApplied() throws {
        var pipeline = Self.pipeline(cursor: ["s": 10])
        let group = try Self.group(pipeline.received(frame: [Self.delivery("s", 11), Self.delivery("s", 12)], now: 0))
        #expect(pipeline.cursor == ["s": 10])
        let single = try Self.group(pipeline.applyFailed(group, Self.busy("disk full"), now: 0))
        #expect(single.cursor == ["s": 11])
        #expect(pipeline.cursor == ["s": 10])
        _ = pipeline.applyFailed(single, Self.busy("disk full"), now: 0)
        #expect(pipeline.cursor == ["s": 10] && pipeline.storedCursor == ["s": 10])
        // Nothing is stored or mirrored past what was applied, also not on a stop.
        #expect(pipeline.drain(now: 5).isEmpty)
        #expect(pipeline.mirroredCursor == ["s": 10])
    }

    @Test func ownOnlyDeliveriesStoreTheCursorAfterTheCursorInterval() throws {
        var pipeline = Self.pipeline(cursor: ["s": 1])
        let own = try Self.group(pipeline.received(frame: [Self.delivery("s", 2)], now: 10))
        let actions = pipeline.applied(own, wroteCursor: false, now: 10)
        #expect(actions == [.acknowledge([.init(stream: "s", sequence: 2)]), .grantCredit(1)])
        #expect(pipeline.cursor == ["s": 2] && pipeline.storedCursor == ["s": 1])
        #expect(pipeline.nextDeadline == 11)
        #expect(pipeline.tick(now: 10.99).isEmpty)
        #expect(pipeline.tick(now: 11) == [.storeCursor(["s": 2])])
        // Stored: the seq map follows right away, it was not written for a while.
        #expect(pipeline.cursorStored(["s": 2], now: 11) == [.mirrorSeqMap(["s": 2])])
        #expect(pipeline.seqMapMirrored(["s": 2], now: 11).isEmpty)
        #expect(pipeline.nextDeadline == nil)
    }

    @Test func aFailedCursorStoreIsTriedAgainASecondLater() throws {
        var pipeline = Self.pipeline(cursor: ["s": 1])
        let own = try Self.group(pipeline.received(frame: [Self.delivery("s", 2)], now: 0))
        _ = pipeline.applied(own, wroteCursor: false, now: 0)
        #expect(pipeline.tick(now: 1) == [.storeCursor(["s": 2])])
        #expect(pipeline.cursorStoreFailed(now: 1).isEmpty)
        #expect(pipeline.nextDeadline == 2)
        #expect(pipeline.tick(now: 2) == [.storeCursor(["s": 2])])
    }

    @Test func theSeqMapIsMirroredAtMostEveryTenthOfASecond() throws {
        var pipeline = Self.pipeline()
        let first = try Self.group(pipeline.received(frame: [Self.delivery("s", 1)], now: 1))
        #expect(pipeline.applied(first, wroteCursor: true, now: 1).last == .mirrorSeqMap(["s": 1]))
        #expect(pipeline.seqMapMirrored(["s": 1], now: 1).isEmpty)
        let second = try Self.group(pipeline.received(frame: [Self.delivery("s", 2)], now: 1.02))
        #expect(!pipeline.applied(second, wroteCursor: true, now: 1.02).contains(.mirrorSeqMap(["s": 2])))
        let third = try Self.group(pipeline.received(frame: [Self.delivery("s", 3)], now: 1.05))
        #expect(!pipeline.applied(third, wroteCursor: true, now: 1.05).contains(.mirrorSeqMap(["s": 3])))
        #expect(pipeline.mirroredCursor == ["s": 1])
        #expect(pipeline.nextDeadline == 1.1)
        #expect(pipeline.tick(now: 1.09).isEmpty)
        #expect(pipeline.tick(now: 1.1) == [.mirrorSeqMap(["s": 3])])
    }

    @Test func aConfirmedGapWithSnapshotsStopsForARestoreAfterWhatCameBeforeIt() throws {
        var pipeline = Self.pipeline(cursor: ["s": 5])
        let gap = SequenceGap(stream: "s", missing: 7...8)
        #expect(pipeline.gone(stream: "s", missing: 7...8, now: 0).isEmpty)
        let before = try Self.group(pipeline.received(frame: [Self.delivery("s", 6), Self.delivery("s", 9)], now: 0))
        #expect(Self.sequences(before) == [6])
        let actions = pipeline.applied(before, wroteCursor: true, now: 0)
        #expect(actions.last == .stopForRestore(gap))
        #expect(!actions.contains { if case .subscribe = $0 { true } else { false } })
        #expect(pipeline.cursor == ["s": 6])
        #expect(pipeline.tick(now: 1).isEmpty)
        #expect(pipeline.nextDeadline == nil)
    }

    @Test func aConfirmedGapWithoutSnapshotsIsReportedOncePerStreamAndApplied() throws {
        var pipeline = Self.pipeline(cursor: ["s": 5], snapshots: false)
        _ = pipeline.gone(stream: "s", missing: 6...7, now: 0)
        let actions = pipeline.received(frame: [Self.delivery("s", 8)], now: 0)
        #expect(actions.first == .report(.messagesLost(SequenceGap(stream: "s", missing: 6...7))))
        let group = try Self.group(actions)
        #expect(Self.sequences(group) == [8])
        // Acknowledged through 8: past the gap only because the stream said 6…7 are gone.
        #expect(pipeline.applied(group, wroteCursor: true, now: 0).first == .acknowledge([.init(stream: "s", sequence: 8)]))
        _ = pipeline.seqMapMirrored(["s": 8], now: 0)
        _ = pipeline.gone(stream: "s", missing: 9...19, now: 0)
        let again = pipeline.received(frame: [Self.delivery("s", 20)], now: 0)
        #expect(again.count == 1)
        #expect(Self.sequences(try Self.group(again)) == [20])
    }

    /// A jump the stream did not confirm (the consumer skipped after a NATS server failover) is never a
    /// verdict, however often it comes: each time, the pipeline consumes again from the cursor, and never
    /// acknowledges past the missing messages.
    @Test func anUnconfirmedJumpIsNeverAGapAndIsConsumedAgain() throws {
        for snapshots in [true, false] {
            var pipeline = Self.pipeline(cursor: ["s": 5], snapshots: snapshots)
            for attempt in 0..<3 {
                let asked = pipeline.received(frame: [Self.delivery("s", 8)], now: Double(attempt))
                #expect(
                    asked == [
                        .report(.recheckingGap(SequenceGap(stream: "s", missing: 6...7))),
                        .subscribe(cursor: [.init(stream: "s", sequence: 5)]), .grantCredit(4),
                    ])
            }
            let group = try Self.group(pipeline.received(frame: [Self.delivery("s", 6), Self.delivery("s", 7), Self.delivery("s", 8)], now: 5))
            #expect(Self.sequences(group) == [6, 7, 8])
            #expect(pipeline.applied(group, wroteCursor: true, now: 5).first == .acknowledge([.init(stream: "s", sequence: 8)]))
        }
    }

    /// A confirmation covers only the range the stream named: a wider jump is still a question.
    @Test func aConfirmationDoesNotCoverAWiderJump() throws {
        var pipeline = Self.pipeline(cursor: ["s": 5], snapshots: false)
        _ = pipeline.gone(stream: "s", missing: 7...7, now: 0)
        let asked = pipeline.received(frame: [Self.delivery("s", 8)], now: 0)
        #expect(asked.first == .report(.recheckingGap(SequenceGap(stream: "s", missing: 6...7))))
        #expect(!asked.contains(.report(.messagesLost(SequenceGap(stream: "s", missing: 6...7)))))
        // And a new connection forgets what the old one confirmed.
        _ = pipeline.gone(stream: "s", missing: 6...7, now: 1)
        _ = pipeline.connected(now: 1)
        #expect(pipeline.received(frame: [Self.delivery("s", 8)], now: 1).first == .report(.recheckingGap(SequenceGap(stream: "s", missing: 6...7))))
    }

    @Test func redeliveredMessagesAreAcknowledgedAndCreditedWithoutApplying() {
        var pipeline = Self.pipeline(cursor: ["s": 5])
        #expect(
            pipeline.received(frame: [Self.delivery("s", 4), Self.delivery("s", 5)], now: 0) == [
                .acknowledge([.init(stream: "s", sequence: 5)]), .grantCredit(1),
            ])
    }

    @Test func aReconnectDropsTheQueueAndSubscribesFromTheCursor() throws {
        var pipeline = Self.pipeline(cursor: ["b": 7, "a": 3])
        let stale = try Self.group(pipeline.received(frame: [Self.delivery("a", 4), Self.delivery("a", 5)], now: 0))
        #expect(pipeline.disconnected(now: 0).isEmpty)
        #expect(pipeline.queuedDeliveries == 0)
        // The group was committed before the connection closed: the cursor moves, the new connection gets
        // no acknowledgement or credit for it.
        #expect(pipeline.applied(stale, wroteCursor: true, now: 0) == [.mirrorSeqMap(["a": 5, "b": 7])])
        _ = pipeline.seqMapMirrored(["a": 5, "b": 7], now: 0)
        #expect(
            pipeline.connected(now: 1) == [
                .subscribe(cursor: [.init(stream: "a", sequence: 5), .init(stream: "b", sequence: 7)]), .grantCredit(4),
            ])
    }

    @Test func aReconnectClearsWhatWaitsForARetry() throws {
        var pipeline = Self.pipeline()
        let group = try Self.group(pipeline.received(frame: [Self.delivery("s", 1)], now: 0))
        _ = pipeline.applyFailed(group, Self.busy("busy"), now: 0)
        #expect(pipeline.queuedDeliveries == 1)
        #expect(pipeline.connected(now: 0.1) == [.subscribe(cursor: [.init(stream: "s", sequence: 0)]), .grantCredit(4)])
        #expect(pipeline.queuedDeliveries == 0)
    }

    @Test func drainingStoresAndMirrorsTheCursorAtOnce() throws {
        var pipeline = Self.pipeline(cursor: ["s": 1])
        let own = try Self.group(pipeline.received(frame: [Self.delivery("s", 2)], now: 0))
        _ = pipeline.applied(own, wroteCursor: false, now: 0)
        #expect(pipeline.drain(now: 0.1) == [.storeCursor(["s": 2])])
        #expect(pipeline.cursorStored(["s": 2], now: 0.1) == [.mirrorSeqMap(["s": 2])])
        #expect(pipeline.seqMapMirrored(["s": 2], now: 0.1).isEmpty)
        #expect(pipeline.mirroredCursor == ["s": 2])
    }
}

/// Cursors come from snapshots and the seq map, sequences from the network: the largest values never trap.
@Suite struct ExtremeSequenceTests {
    @Test func cursorAtTheLastSequenceSkipsEverythingWithoutTrapping() {
        var pipeline = ApplyPipelineTests.pipeline(cursor: ["s": .max])
        let actions = pipeline.received(frame: [ApplyPipelineTests.delivery("s", 5), ApplyPipelineTests.delivery("s", .max)], now: 0)
        #expect(!actions.contains { if case .apply = $0 { true } else { false } }, "nothing after the cursor: \(actions)")
    }

    @Test func deliveryAtTheLastSequenceAfterASmallCursorIsAGap() {
        var pipeline = ApplyPipelineTests.pipeline(cursor: ["s": 3])
        let actions = pipeline.received(frame: [ApplyPipelineTests.delivery("s", .max)], now: 0)
        #expect(!actions.contains { if case .apply = $0 { true } else { false } }, "a jump is never applied at once: \(actions)")
    }
}

/// The broker's fetchers (one per shard stream) share the applier's credit: each can be two frames ahead.
@Suite struct CreditPerShardTests {
    @Test func twoFramesPerShardAndFourAtLeast() {
        #expect(ApplyPipeline.Settings.credit(shards: 0) == 4)
        #expect(ApplyPipeline.Settings.credit(shards: 1) == 4)
        #expect(ApplyPipeline.Settings.credit(shards: 2) == 4)
        #expect(ApplyPipeline.Settings.credit(shards: 4) == 8)
        #expect(ApplyPipeline.Settings.credit(shards: .max) == .max)
    }
}
