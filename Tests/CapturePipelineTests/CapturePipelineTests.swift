import IPC
import Testing

@testable import CapturePipeline

/// A simulated capturer loop: the clock is a variable, looks are answered by the test.
private struct Harness {
    var pipeline: CapturePipeline
    var now: Double
    var sent: [DataMessage.Publish] = []
    var looks: [Double] = []
    var schemaChecks: [Double] = []
    var stored: [Int64] = []

    init(settings: CapturePipeline.Settings = .init(), watermark: Int64 = 0, now: Double = 1000) {
        pipeline = CapturePipeline(settings: settings, watermark: watermark, now: now)
        self.now = now
    }

    /// Advances the clock to the next deadline (or `limit`) and ticks; `answer` answers each look.
    mutating func runUntil(_ limit: Double, answer: (Int64, Double) -> CapturePipeline.LookOutcome) {
        while let deadline = pipeline.nextDeadline, deadline <= limit {
            now = max(now, deadline)
            perform(pipeline.tick(now: now), answer: answer)
        }
        now = limit
    }

    mutating func perform(_ actions: [CapturePipeline.Action], answer: (Int64, Double) -> CapturePipeline.LookOutcome) {
        for action in actions {
            switch action {
            case .look(let through, _):
                looks.append(now)
                perform(pipeline.looked(answer(through, now), now: now), answer: answer)
            case .publish(let batch): sent.append(batch)
            case .storeWatermark(let id):
                stored.append(id)
                pipeline.watermarkStored(id)
            case .removePublished: break
            case .checkSchema: schemaChecks.append(now)
            }
        }
    }

    mutating func connect() { perform(pipeline.brokerConnected(now: now), answer: { _, _ in .unchanged }) }
}

private func batch(_ n: Int) -> CapturePipeline.UnnumberedBatch {
    .init(shard: 1, messageID: "m\(n)", payload: [UInt8(n)])
}

@Suite struct CapturePipelineTests {
    /// The missed commit: a file event arrives while the commit is not visible yet (data_version has not
    /// moved). The pipeline must look again shortly, not wait for another event.
    @Test func aCommitThatBecomesVisibleAfterItsEventIsRead() {
        var h = Harness()
        h.connect()
        h.runUntil(h.now + 0.5) { _, _ in .nothingNew }  // the start-up look: nothing queued
        h.looks.removeAll()
        let event = h.now
        h.pipeline.databaseTouched(now: event)
        var visibleAt = event + 0.005  // the commit shows 5 ms after its event
        h.runUntil(event + 0.5) { through, now in
            if now >= visibleAt {
                visibleAt = .infinity
                return .read(throughID: through + 1, batches: [batch(1)])
            }
            return .unchanged
        }
        #expect(h.sent.map(\.messageID) == ["m1"])
        #expect(h.looks.first == event)
        #expect(h.looks.count >= 3)
        let readAt = h.looks.first { $0 >= event + 0.005 }
        #expect(readAt != nil && readAt! < event + 0.02, "read within 20 ms of becoming visible: \(h.looks)")
    }

    /// One event standing for two commits, the second visible only after the first was read.
    @Test func aSecondCommitBehindTheSameEventIsRead() {
        var h = Harness()
        h.connect()
        h.runUntil(h.now + 0.5) { _, _ in .nothingNew }
        let event = h.now
        h.pipeline.databaseTouched(now: event)
        var commits = 0
        h.runUntil(event + 0.3) { through, now in  // before the safety look
            if commits == 0 || (commits == 1 && now >= event + 0.01) {
                commits += 1
                return .read(throughID: through + 1, batches: [batch(commits)])
            }
            return .nothingNew
        }
        #expect(h.sent.map(\.messageID) == ["m1", "m2"])
    }

    /// Commits at `rate` per second, one entry each, each announced by its file event; every look reads all
    /// that is committed. Returns the entries per read and each commit's wait until the look that read it.
    private func stream(rate: Double, seconds: Double = 0.2) -> (entriesPerRead: [Int64], waits: [Double]) {
        var h = Harness()
        h.connect()
        h.runUntil(h.now + 0.5) { _, _ in .nothingNew }
        let start = h.now
        var reads: [Int64] = []
        var waits: [Double] = []
        let commits = Int(rate * seconds)
        func committed(by now: Double) -> Int64 { Int64(min(Double(commits), ((now - start) * rate).rounded(.down) + 1)) }
        for index in 0..<commits {
            let at = start + Double(index) / rate
            h.runUntil(at) { through, now in
                let last = committed(by: now - 1e-9)
                guard last > through else { return .nothingNew }
                reads.append(last - through)
                for entry in (through + 1)...last { waits.append(now - (start + Double(entry - 1) / rate)) }
                return .read(throughID: last, batches: [batch(Int(last % 200))])
            }
            h.pipeline.databaseTouched(now: at)
        }
        return (reads, waits)
    }

    /// A stream of single-row commits is read a hundred or so at a time, not a few dozen: looks 4 ms apart
    /// once a look finds 16 entries or more; a trickle is read as it comes (looks stay 1 ms apart at most).
    @Test func aStreamOfSmallCommitsIsReadInLargerBatchesATrickleAtOnce() {
        let busy = stream(rate: 25_000)
        let steady = busy.entriesPerRead.dropFirst(3)
        #expect(!steady.isEmpty && steady.allSatisfy { $0 >= 80 }, "\(busy.entriesPerRead)")
        #expect(busy.waits.max()! <= 0.0045)
        let trickle = stream(rate: 1_000, seconds: 0.5)
        #expect(trickle.entriesPerRead.allSatisfy { $0 <= 2 }, "\(trickle.entriesPerRead)")
        #expect(trickle.waits.max()! <= 0.0011)
        // Between the two, reads stay under the batching size and looks 1 ms apart.
        let moderate = stream(rate: 8_000)
        #expect(moderate.entriesPerRead.dropFirst(3).allSatisfy { $0 < 16 }, "\(moderate.entriesPerRead)")
    }

    /// A read of `scan_max_changes` entries is a backlog, never paced as a stream, however small the setting.
    @Test func aFullReadIsABacklogWhateverTheScanLimit() {
        for (limit, expected) in [(512, 16..<256), (100, 16..<100), (16, 16..<16), (1, 16..<16)] as [(Int64, Range<Int64>)] {
            var settings = CapturePipeline.Settings()
            settings.endBatching(atScanLimit: limit)
            #expect(settings.batchingReads == expected, "scan limit \(limit)")
            #expect(!settings.batchingReads.contains(limit))
        }
    }

    /// Idle: no events, nothing to do but one look per safety interval (and cleanup), no spinning.
    @Test func idleCostsOneLookPerSecond() {
        var h = Harness()
        h.connect()
        let start = h.now
        var ticks = 0
        while let deadline = h.pipeline.nextDeadline, deadline <= start + 60 {
            #expect(deadline >= h.now)
            h.now = deadline
            ticks += 1
            h.perform(h.pipeline.tick(now: h.now)) { _, _ in .unchanged }
        }
        #expect(h.looks.count <= 62)
        #expect(ticks <= 80)
        #expect(h.sent.isEmpty)
    }

    /// The deadline is a value: asking again without an event gives the same answer, later or not.
    @Test func theDeadlineDoesNotMoveWhenAskedAgain() {
        var h = Harness()
        h.connect()
        h.runUntil(h.now + 2) { _, _ in .unchanged }
        let first = h.pipeline.nextDeadline
        #expect(first != nil)
        #expect(h.pipeline.nextDeadline == first)
        #expect(first! > h.now - 1e-9)
    }

    /// The watermark moves only over the prefix of the log whose every batch was confirmed.
    @Test func theWatermarkMovesOverTheConfirmedPrefixOnly() {
        var h = Harness(watermark: 10)
        h.connect()
        var reads = 0
        h.runUntil(h.now + 0.01) { through, _ in
            reads += 1
            guard reads <= 2 else { return .nothingNew }
            return .read(throughID: through + 5, batches: [batch(reads * 2 - 1), batch(reads * 2)])
        }
        #expect(h.sent.count == 4)
        #expect(h.pipeline.readThrough == 20)
        let ids = h.sent.map(\.batchID)
        h.pipeline.published(ids[2], now: h.now)
        h.pipeline.published(ids[3], now: h.now)
        #expect(h.pipeline.watermark == 10)  // the first chunk is not confirmed yet
        h.pipeline.published(ids[1], now: h.now)
        #expect(h.pipeline.watermark == 10)
        h.pipeline.published(ids[0], now: h.now)
        #expect(h.pipeline.watermark == 20)
        h.runUntil(h.now + 0.2) { _, _ in .unchanged }
        #expect(h.stored == [20])
    }

    /// At most `window` unconfirmed batches; reading resumes when one is confirmed.
    @Test func theWindowHoldsReadsBackUntilAConfirmation() {
        var settings = CapturePipeline.Settings()
        settings.window = 2
        var h = Harness(settings: settings)
        h.connect()
        var next: Int64 = 0
        let answer: (Int64, Double) -> CapturePipeline.LookOutcome = { through, _ in
            guard next < 5 else { return .nothingNew }
            next += 1
            return .read(throughID: through + 1, batches: [batch(Int(next))])
        }
        h.runUntil(h.now + 0.1, answer: answer)
        #expect(h.sent.count == 2)
        h.pipeline.published(h.sent[0].batchID, now: h.now)
        h.runUntil(h.now + 0.1, answer: answer)
        #expect(h.sent.count == 3)
    }

    /// A column added and dropped again while the window is full must still be seen: every event has the
    /// schema checked, at once and on the recheck delays (the commit may show later than its event), while
    /// the look itself waits for room. With room, the looks check it and no separate check is asked for.
    @Test func theSchemaIsCheckedAfterEveryEventWhileLooksAreHeldBack() {
        var settings = CapturePipeline.Settings()
        settings.window = 1
        var h = Harness(settings: settings)
        h.connect()
        var read = false
        h.runUntil(h.now + 0.5) { through, _ in
            defer { read = true }
            return read ? .nothingNew : .read(throughID: through + 1, batches: [batch(1)])
        }
        #expect(h.sent.count == 1, "the window is full")
        #expect(h.schemaChecks.isEmpty, "with room, looks check the schema")
        h.looks.removeAll()
        h.schemaChecks.removeAll()
        let event = h.now
        h.pipeline.databaseTouched(now: event)
        h.runUntil(event + 5) { _, _ in .nothingNew }
        #expect(h.looks.isEmpty, "held back: \(h.looks)")
        var expected = [event]
        for delay in settings.recheckDelays { expected.append(expected.last! + delay) }
        #expect(h.schemaChecks.count == expected.count && zip(h.schemaChecks, expected).allSatisfy { abs($0 - $1) < 1e-9 }, "\(h.schemaChecks)")
        // Room again: the look that waited runs, and no schema check is asked for on its own.
        h.schemaChecks.removeAll()
        h.pipeline.published(h.sent[0].batchID, now: h.now)
        h.pipeline.databaseTouched(now: h.now)
        h.runUntil(h.now + 2) { _, _ in .nothingNew }
        #expect(!h.looks.isEmpty)
        #expect(h.schemaChecks.isEmpty, "\(h.schemaChecks)")
    }

    /// A new broker gets everything in flight again, in order; a failed publish is retried after the delay.
    @Test func inFlightBatchesAreSentAgainToANewBrokerAndAfterAFailure() {
        var h = Harness()
        h.connect()
        var done = false
        h.runUntil(h.now + 0.01) { through, _ in
            defer { done = true }
            return done ? .nothingNew : .read(throughID: through + 2, batches: [batch(1), batch(2)])
        }
        #expect(h.sent.count == 2)
        h.pipeline.brokerDisconnected()
        h.connect()
        #expect(h.sent.map(\.messageID) == ["m1", "m2", "m1", "m2"])
        let retrying = h.pipeline.publishFailed(h.sent[1].batchID, now: h.now)
        #expect(retrying)
        h.runUntil(h.now + 0.9) { _, _ in .unchanged }
        #expect(h.sent.count == 4)
        h.runUntil(h.now + 0.2) { _, _ in .unchanged }
        #expect(h.sent.map(\.messageID).last == "m2")
        #expect(h.sent.count == 5)
        // A late answer about a batch already confirmed changes nothing.
        h.pipeline.published(h.sent[0].batchID, now: h.now)
        let unknown = h.pipeline.publishFailed(h.sent[0].batchID, now: h.now)
        #expect(!unknown)
    }

    @Test func batchIDsStartWhereTheySayAndNeverRepeat() {
        var settings = CapturePipeline.Settings()
        settings.firstBatchID = 1_700_000_000_000_000_000
        var h = Harness(settings: settings)
        h.connect()
        var n = 0
        h.runUntil(h.now + 0.1) { through, _ in
            n += 1
            return n <= 3 ? .read(throughID: through + 1, batches: [batch(n)]) : .nothingNew
        }
        #expect(h.sent.map(\.batchID) == [1_700_000_000_000_000_000, 1_700_000_000_000_000_001, 1_700_000_000_000_000_002])
    }

    @Test func withPublishOffTheWatermarkMovesAndNothingIsSent() {
        var settings = CapturePipeline.Settings()
        settings.publish = false
        var h = Harness(settings: settings)
        var n = 0
        h.runUntil(h.now + 0.5) { through, _ in
            n += 1
            return n == 1 ? .read(throughID: 42, batches: []) : .nothingNew
        }
        #expect(h.sent.isEmpty)
        #expect(h.stored == [42])
    }

    @Test func aFailedWatermarkStoreIsRetried() {
        var h = Harness()
        h.connect()
        var done = false
        h.runUntil(h.now + 0.01) { through, _ in
            defer { done = true }
            return done ? .nothingNew : .read(throughID: 7, batches: [batch(1)])
        }
        h.pipeline.published(h.sent[0].batchID, now: h.now)
        let due = h.pipeline.tick(now: h.now + 0.2)
        #expect(due.contains(.storeWatermark(7)))
        h.pipeline.watermarkStoreFailed(now: h.now + 0.2)
        let tooSoon = h.pipeline.tick(now: h.now + 0.5)
        #expect(!tooSoon.contains(.storeWatermark(7)))
        let retried = h.pipeline.tick(now: h.now + 1.3)
        #expect(retried.contains(.storeWatermark(7)))
        #expect(h.pipeline.watermarkToStore == 7)
    }
}
