/// Exit codes with a meaning between workers and the supervisor (anything else non-zero is a crash).
public enum WorkerExitCode {
    /// A stream no longer holds changes this node has not applied: only a snapshot restore can bring them
    /// back. The supervisor restores in place instead of restarting the worker into the same gap: it stops
    /// the snapshotter, the applier and the capturer, starts the snapshotter asking it to restore
    /// (`RestoreRequest`), then the others.
    public static let restoreNeeded: Int32 = 3
}

/// How the supervisor asks the snapshotter it starts to restore a snapshot now: the reason, in this
/// environment variable. Only the supervisor sets it (it is never inherited from the supervisor's own
/// environment).
public enum RestoreRequest {
    public static let environmentVariable = "HARMONYLITE_RESTORE_REASON"
}
