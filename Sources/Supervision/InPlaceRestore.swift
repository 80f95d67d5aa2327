import HarmonyConfig
import IPC

/// The in-place snapshot restore, part of `SupervisorStateMachine`.
///
/// A worker that exits with `WorkerExitCode.restoreNeeded` (the applier found a stream no longer holds
/// changes it has not applied) makes the node restore a snapshot without stopping: the child that restores
/// snapshots (`ChildSpec.restoresSnapshots`, the snapshotter) and every child started after it (applier,
/// capturer) are stopped, last first; the restorer is started again with `spawnToRestore`, restores, and
/// reports ready; the others start after it in order, as at the node's start. Children started before it
/// (nats-server, broker) keep running. READY=1 stays in effect; `STATUS=` says "restoring" meanwhile.
///
/// Each restore request counts as a restart of the worker that asked, against its `restart_intensity`:
/// a restore that does not cure what the worker found ends, past that limit, in the node stopping with
/// status 1 instead of a loop.
extension SupervisorStateMachine {
    /// The child that restores snapshots, if any.
    var restorerIndex: Int? { children.firstIndex { $0.spec.restoresSnapshots } }

    /// Child `index` exited asking for a restore.
    mutating func beginRestore(_ index: Int, note: String, now: Double, into actions: inout [Action]) {
        let name = children[index].spec.role
        let policy = children[index].spec.policy
        children[index].state = .notStarted
        guard let restorer = restorerIndex else {
            actions.append(.report(.restoreImpossible(askedBy: name, note: note)))
            beginShutdown(exitCode: 1, because: .restoreFailed(name), now: now, into: &actions)
            return
        }
        guard children[index].history.recordCrash(at: now, policy: policy, randomUnit: randomUnit()) != nil else {
            actions.append(.report(.restoresExhausted(askedBy: name, note: note, limit: RestartLimit(policy))))
            beginShutdown(exitCode: 1, because: .restoreFailed(name), now: now, into: &actions)
            return
        }
        children[index].restarts += 1
        var announceReady = false
        switch phase {
        case .starting: announceReady = true
        case .reloading:
            // The reload is interrupted: done again, whole, once the restore is over. A child it is stopping
            // now that the restore stops too is the restore's to start again.
            announceReady = true
            reloadDeferred = true
            for child in restorer..<children.count {
                if case .stopping(let pid, let deadline, .reload, let killed) = children[child].state {
                    children[child].state = .stopping(pid: pid, deadline: deadline, purpose: .restore, killed: killed)
                }
            }
        case .restoring(_, _, let pending): announceReady = pending
        default: break
        }
        phase = .restoring(askedBy: name, stage: .stopping, announceReady: announceReady)
        cancelRestarts(of: restorer..<children.count)
        actions.append(.report(.restoreStarted(askedBy: name, note: note, stopping: children[restorer...].map(\.spec.role).reversed())))
        actions.append(.notify(.status(.restoring(askedBy: name))))
        continueRestore(now: now, into: &actions)
    }

    /// Stops the next child of the restore (last first), or, once all are stopped, starts the restorer.
    mutating func continueRestore(now: Double, into actions: inout [Action]) {
        guard case .restoring(let askedBy, .stopping, let announceReady) = phase, let restorer = restorerIndex,
            stopNext(of: restorer..<children.count, purpose: .restore, status: NodeStatus.restoreStopping, now: now, into: &actions)
        else { return }
        phase = .restoring(askedBy: askedBy, stage: .restoring, announceReady: announceReady)
        actions.append(.notify(.status(.restorerRestoring(children[restorer].spec.role))))
        actions.append(spawnAction(restorer))
    }

    /// A child reported ready while restoring: the restorer's ready ends the restore proper; then the
    /// children after it start one at a time.
    mutating func restoreChildReady(_ name: WorkerRole, now: Double, into actions: inout [Action]) {
        guard case .restoring(let askedBy, let stage, let announceReady) = phase, let restorer = restorerIndex else { return }
        switch stage {
        case .stopping:
            return
        case .restoring:
            guard name == children[restorer].spec.role else { return }
            phase = .restoring(askedBy: askedBy, stage: .starting, announceReady: announceReady)
            advanceAfterRestore(now: now, into: &actions)
        case .starting:
            advanceAfterRestore(now: now, into: &actions)
        }
    }

    private mutating func advanceAfterRestore(now: Double, into actions: inout [Action]) {
        guard case .restoring(_, .starting, let announceReady) = phase, let restorer = restorerIndex,
            startNext(of: (restorer + 1)..<children.count, status: NodeStatus.restoreStarting, into: &actions)
        else { return }
        phase = .running
        actions.append(.notify(announceReady ? .ready(runningStatus) : .status(runningStatus)))
        actions.append(.report(.restoreComplete))
        if reloadDeferred {
            actions.append(.report(.deferredReloadStarting))
            beginReload(now: now, into: &actions)
        }
    }

    /// A child that ended on its own while the restore is stopping it (or would stop it): it is not
    /// restarted, the restore starts it again.
    func restoreStopsOnItsOwn(_ index: Int) -> Bool {
        guard case .restoring(_, .stopping, _) = phase, let restorer = restorerIndex else { return false }
        return index >= restorer
    }

    /// How child `index` is started now: the restorer, while a restore waits for it, is asked to restore.
    func spawnAction(_ index: Int) -> Action {
        let name = children[index].spec.role
        if case .restoring(let askedBy, .restoring, _) = phase, children[index].spec.restoresSnapshots {
            return .spawnToRestore(child: name, reason: SupervisorReport.restoreReason(askedBy: askedBy))
        }
        return .spawn(child: name)
    }
}
