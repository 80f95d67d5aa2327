/// Exit codes with a meaning between workers and the supervisor (anything else non-zero is a crash).
public enum WorkerExitCode {
    /// A stream no longer holds changes this node has not applied: only a snapshot restore can bring them
    /// back. The supervisor restores in place instead of restarting the worker into the same gap: it stops
    /// the snapshotter, the applier and the capturer, starts the snapshotter asking it to restore
    /// (`RestoreRequest`), then the others.
    public static let restoreNeeded: Int32 = 3
    /// The node must not start and restarting it cannot help: an operator must act (a deleted database and
    /// no snapshot to restore it from, an upstream takeover that cannot finish). The supervisor stops the
    /// node at once with `SupervisorExitCode.refused`, and the message it stopped on says what to do.
    public static let refused: Int32 = 4
}

/// The supervisor's exit statuses that systemd must not answer with a restart (`RestartPreventExitStatus=`
/// in the unit): restarting cannot help until an operator acts.
public enum SupervisorExitCode {
    /// A configuration error (the file, a key, a path).
    public static let configuration: Int32 = 2
    /// A worker refused the start (`WorkerExitCode.refused`); EX_CONFIG.
    public static let refused: Int32 = 78
}

/// A file in the run directory saying the supervisor created the database at a start (it did not exist):
/// the snapshotter restores it from a snapshot before anything replicates, and removes the file once ready.
public enum DatabaseCreatedMarker {
    public static func path(runDirectory: String) -> String { runDirectory + "/database-created" }
}

/// How the supervisor asks the snapshotter it starts to restore a snapshot now: the reason, in this
/// environment variable. Only the supervisor sets it (it is never inherited from the supervisor's own
/// environment).
public enum RestoreRequest {
    public static let environmentVariable = "HARMONYLITE_RESTORE_REASON"
}
