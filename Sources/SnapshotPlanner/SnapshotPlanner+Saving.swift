/// Events once ready: the lease, the newest snapshot, the streams' history, finished jobs.
extension SnapshotPlanner {
    public mutating func leaseChecked(_ answer: LeaseAnswer, now: Double) -> [Action] {
        guard phase == .ready else { return [] }
        let wasLeading = isLeading
        switch answer {
        case .held:
            leaseHeld = true
            if wasLeading { return leadingWork(now: now) + [.readSnapshotRequest] }
            return storeOpen ? [.readNewestSnapshot] : [.openStore]
        case .heldByAnother:
            leaseHeld = false
            stopLeading()
            return wasLeading ? [.report(.leaseLost)] : []
        case .unanswered(let error):
            stopLeading()
            return [.report(wasLeading ? .leaseNotRenewed(error: error) : .leaseUnanswered(error: error))]
        }
    }

    /// The newest snapshot's cursor (nil: the store has none yet), read after taking the lease.
    public mutating func newestSnapshotRead(cursor: [String: UInt64]?, now: Double) -> [Action] {
        if case .waitingForCover(let gap, let detail, _) = phase {
            return coverLooked(for: gap, readyDetail: detail, newest: cursor, now: now)
        }
        if case .waitingForSnapshot = phase { return snapshotLooked(cursor, unanswered: nil, now: now) }
        guard phase == .ready, leaseHeld, storeOpen, !isLeading else { return [] }
        newestSnapshotCursor = cursor ?? [:]
        nextHistoryCheck = max(nextHistoryCheck, now)  // not before the retry after a failed save
        nextIntervalSave = settings.interval.map { now + $0 }
        return [.report(.leading)] + leadingWork(now: now) + [.readSnapshotRequest]
    }

    public mutating func newestSnapshotUnanswered(_ error: String, now: Double) -> [Action] {
        if case .waitingForCover(let gap, let detail, _) = phase {
            return coverLooked(for: gap, readyDetail: detail, newest: restoredCursor, now: now)
        }
        if case .waitingForSnapshot = phase { return snapshotLooked(nil, unanswered: error, now: now) }
        guard phase == .ready, leaseHeld, !isLeading else { return [] }
        return [.report(.leaseHolderStoreUnanswered(error: error, retryIn: settings.leaseCheckInterval))]
    }

    /// Each shard stream's last sequence; a stream that did not answer is left out.
    public mutating func streamHistoryRead(lastSequences: [String: UInt64], now: Double) -> [Action] {
        guard phase == .ready, job == nil, let covered = newestSnapshotCursor else { return [] }
        let threshold = settings.historyThreshold
        for stream in settings.streams {
            guard let last = lastSequences[stream] else { continue }
            let since = covered[stream] ?? 0
            // A snapshot that claims more than the stream holds (recreated stream, or hostile metadata with a
            // cursor of 2^64 − 1) is replaced, never added to: `since + threshold` would overflow.
            if since > last { return startSave(because: .snapshotPastStream(stream: stream, claimed: since, last: last), now: now) }
            if last - since >= threshold {
                return startSave(because: .streamHistory(stream: stream, messages: last - since, maxEntries: settings.maxEntries), now: now)
            }
        }
        return []
    }

    public mutating func jobFinished(_ outcome: Result<JobReport, JobFailure>, now: Double) -> [Action] {
        guard let finished = job else { return [] }
        job = nil
        switch (finished.kind, outcome) {
        case (.restore, .success(let report)) where report.cursor == nil && bootstrap != nil:
            return noSnapshotFor(bootstrap!, now: now)
        case (.restore, .success(let report)):
            if report.cursor != nil { restored += 1 }
            restoredCursor = report.cursor
            phase = .acceptingGaps(readyDetail: report.cursor == nil ? .noSnapshotInStore : .restored(summary: report.summary, fields: report.fields))
            return [gapCoverDeadline.map { now >= $0 } == true ? .acceptGaps : .acceptCoveredGaps]
        case (.restore, .failure(let error)) where error.refusedSnapshot:
            return refusedSnapshot(error, now: now)
        case (.restore, .failure(let error)) where error.diskFull:
            phase = .stopped
            return [.refuse(.noSpaceForRestore(error: "\(error)"))]
        case (.restore, .failure(let error)):
            return fail(.restoreFailed(error: "\(error)"))
        case (.save, .success(let report)):
            saved += 1
            if isLeading, let cursor = report.cursor { newestSnapshotCursor = cursor }
            scheduleIntervalSave(now: now)
            return [.report(.saved(summary: report.summary, fields: report.fields))]
        case (.save, .failure(let error)):
            let retry = Self.retryAfterFailedSave
            nextHistoryCheck = max(nextHistoryCheck, now + retry)
            scheduleIntervalSave(now: now, notSoonerThan: retry)
            return [.report(.saveFailed(error: "\(error)", retryIn: retry))]
        }
    }

    // MARK: steps

    /// What is due once ready: the lease check first (its answer goes on with `leadingWork`), then saving.
    mutating func savingWork(now: Double) -> [Action] {
        if settings.publish && now >= nextLeaseCheck {
            nextLeaseCheck = now + settings.leaseCheckInterval
            return [.checkLease]
        }
        return leadingWork(now: now)
    }

    /// A save on the timer, or else a look at the streams' history, when due and leading.
    mutating func leadingWork(now: Double) -> [Action] {
        guard isLeading, job == nil else { return [] }
        if let due = nextIntervalSave, now >= due { return startSave(because: .interval, now: now) }
        guard now >= nextHistoryCheck else { return [] }
        nextHistoryCheck = now + Self.historyCheckInterval
        return [.readStreamHistory]
    }

    mutating func startSave(because reason: PlannerReport.SaveReason, now: Double) -> [Action] {
        nextIntervalSave = nil
        job = RunningJob(kind: .save, nextPoll: now + Self.jobPollInterval)
        return [.report(.saving(reason)), .startJob(.save)]
    }

    mutating func scheduleIntervalSave(now: Double, notSoonerThan floor: Double = 0) {
        guard isLeading, let interval = settings.interval else { return }
        nextIntervalSave = now + max(interval, floor)
    }

    mutating func stopLeading() {
        newestSnapshotCursor = nil
        nextIntervalSave = nil
    }
}
