/// Events of the start: connecting, the restore decision, opening the store, the restore.
extension SnapshotPlanner {
    public mutating func connected(now: Double) -> [Action] {
        if phase == .disabled {
            registry.connected = true
            registry.nextSchemaRead = now
            registry.lastProblem = nil
            return [.report(.registryConnected)]
        }
        guard case .connecting = phase else { return [] }
        registry.connected = true
        guard settings.replicate else { return becomeReady(.replicationOff, now: now) }
        phase = .decidingRestore(retryAt: now)
        return [.decideRestore]
    }

    public mutating func connectFailed(_ error: String, now: Double) -> [Action] {
        if phase == .disabled { return registryProblem(.registryWaitingForNATS(cause: error, retryEvery: RegistrySchedule.connectRetryInterval)) }
        guard case .connecting = phase else { return [] }
        phase = .connecting(retryAt: now + Self.retryInterval)
        return problem(waitingFor: .nats, cause: error, retryingEvery: Self.retryInterval, now: now)
    }

    /// The decision, made once: why this node restores, or nil when it need not.
    /// `bootstrap`: the node needs its rows from a snapshot (its reason goes first).
    public mutating func restoreDecided(reason: String?, bootstrap: Bootstrap? = nil, now: Double) -> [Action] {
        guard case .decidingRestore = phase else { return [] }
        self.bootstrap = bootstrap
        let restore: PlannerReport.RestoreReason? =
            if let bootstrap { .bootstrap(bootstrap, also: reason) } else if let reason { .decided(reason) } else { nil }
        guard let restore else { return becomeReady(.noRestoreNeeded, now: now) }
        phase = .restoreNeeded(reason: restore, storeRetryAt: now)
        return storeOpen ? startRestore(restore, now: now) : [.openStore]
    }

    /// No restore may run now (the applier or the capturer is running: a snapshotter restarted under
    /// them): ready without deciding. A node that misses changes finds out in its applier, which asks the
    /// supervisor for a restore in place.
    public mutating func restoreDeclined(_ why: String, now: Double) -> [Action] {
        guard case .decidingRestore = phase else { return [] }
        return becomeReady(.restoreDeclined(why: why), now: now)
    }

    public mutating func restoreUndecided(_ error: RestoreDecisionError, now: Double) -> [Action] {
        guard case .decidingRestore = phase else { return [] }
        switch error.kind {
        case .streamsUnanswered:
            phase = .decidingRestore(retryAt: now + Self.retryInterval)
            return problem(waitingFor: .shardStreams, cause: "\(error)", retryingEvery: Self.retryInterval, now: now)
        case .localStateUnreadable:
            return fail(.restoreUndecidable(error: "\(error)"))
        }
    }

    public mutating func storeOpened(now: Double) -> [Action] {
        storeOpen = true
        switch phase {
        case .restoreNeeded(let reason, _) where job == nil: return startRestore(reason, now: now)
        case .ready where leaseHeld && !isLeading: return [.readNewestSnapshot]
        default: return []
        }
    }

    public mutating func storeOpenFailed(_ error: String, now: Double) -> [Action] {
        switch phase {
        case .restoreNeeded(let reason, _):
            phase = .restoreNeeded(reason: reason, storeRetryAt: now + Self.retryInterval)
            return problem(waitingFor: .store(settings.storeName), cause: error, retryingEvery: Self.retryInterval, now: now)
        case .ready:
            // Opened for the lease holder: tried again at the next lease check.
            return problem(waitingFor: .storeForLease(settings.storeName), cause: error, retryingEvery: settings.leaseCheckInterval, now: now)
        default:
            return []
        }
    }

    public mutating func gapsAccepted(now: Double) -> [Action] {
        guard case .acceptingGaps(let detail) = phase else { return [] }
        return becomeReady(detail, now: now)
    }

    /// After a restore, a stream still starts past the cursor and no snapshot had those changes (a burst
    /// faster than the lease holder's snapshots, or a node that fell behind between two of them): the
    /// store's newest snapshot is looked at every `gapCoverRetry` s and restored when it is another one,
    /// until the gap is covered or `gapCoverWait` s have gone by; then the gap is accepted, loudly.
    /// Meanwhile the capturer and the applier do not run (a restore in place, or the start): nothing is
    /// lost waiting, and the same snapshot is never restored twice.
    public mutating func gapsUncovered(_ description: String, now: Double) -> [Action] {
        guard case .acceptingGaps(let detail) = phase else { return [] }
        let deadline = gapCoverDeadline ?? now + Self.gapCoverWait
        gapCoverDeadline = deadline
        guard now < deadline else { return [.acceptGaps] }
        phase = .waitingForCover(gap: description, readyDetail: detail, nextCheck: now + Self.gapCoverRetry)
        return [.report(.gapUncovered(gap: description, lookEvery: Self.gapCoverRetry, acceptedIn: Int(deadline - now)))]
    }

    /// The store's newest snapshot while waiting for one that covers a gap (`restoredCursor` when the store
    /// did not answer): another one is restored; the same one is looked for again, until the deadline.
    mutating func coverLooked(for gap: String, readyDetail: PlannerReport.ReadyReason, newest: [String: UInt64]?, now: Double) -> [Action] {
        if let newest, newest != restoredCursor {
            phase = .restoreNeeded(reason: .newerSnapshot(gap: gap), storeRetryAt: now)
            return storeOpen ? startRestore(.newerSnapshot(gap: gap), now: now) : [.openStore]
        }
        guard let deadline = gapCoverDeadline, now < deadline else {
            phase = .acceptingGaps(readyDetail: readyDetail)
            return [.acceptGaps]
        }
        phase = .waitingForCover(gap: gap, readyDetail: readyDetail, nextCheck: now + Self.gapCoverRetry)
        return []
    }

    public mutating func gapsNotAccepted(_ error: String, now: Double) -> [Action] {
        guard case .acceptingGaps = phase else { return [] }
        return fail(.gapsNotStored(error: error))
    }

    /// The store's snapshot was refused (unsigned, badly signed, or not what its signed metadata says): the
    /// database is unchanged, and the restore is tried again every `refusedSnapshotRetry` s — a lease holder
    /// of this cluster saves a signed snapshot over a planted one — while the worker stays not ready (the
    /// applier does not start into the gap that made the restore needed). Logged at error level, once for
    /// each different refusal, and shown in the status meanwhile.
    mutating func refusedSnapshot(_ error: JobFailure, now: Double) -> [Action] {
        let reason: PlannerReport.RestoreReason
        switch phase {
        case .restoreNeeded(let why, _): reason = why
        case .waitingForCover(let gap, _, _): reason = .newerSnapshot(gap: gap)
        default: reason = .afterRefusal
        }
        phase = .restoreNeeded(reason: reason, storeRetryAt: now + Self.refusedSnapshotRetry)
        let report = PlannerReport.snapshotRefused(error: "\(error)", retryEvery: Self.refusedSnapshotRetry)
        guard report != lastProblem else { return [] }
        lastProblem = report
        return [.report(report)]
    }

    mutating func startRestore(_ reason: PlannerReport.RestoreReason, now: Double) -> [Action] {
        job = RunningJob(kind: .restore, nextPoll: now + Self.jobPollInterval)
        return [.report(.restoring(reason)), .startJob(.restore)]
    }
}
