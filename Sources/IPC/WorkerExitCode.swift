/// Exit codes with a meaning between workers and the supervisor (anything else non-zero is a crash).
public enum WorkerExitCode {
    /// A stream no longer holds changes this node has not applied: only a snapshot restore can bring them
    /// back. The supervisor restores in place instead of restarting the worker into the same gap: it stops
    /// the snapshotter, the applier and the capturer, starts the snapshotter asking it to restore
    /// (`RestoreRequest`), then the others.
    public static let restoreNeeded: Int32 = 3
    /// The worker refuses to run on the node as it is (an upstream takeover that cannot finish): a restart
    /// meets the same state and refuses again. The supervisor stops the node at once with
    /// `refusedNodeExitStatus`, which the systemd unit does not restart on (`RestartPreventExitStatus=`).
    public static let refused: Int32 = 4
    /// The supervisor's exit status when a worker refused to run (sysexits' EX_CONFIG): a person must act,
    /// the message the node stopped on says what to do. `deploy/harmonylite.service` lists it in
    /// `RestartPreventExitStatus=`, so `Restart=on-failure` does not start the node into the same refusal.
    public static let refusedNodeExitStatus: Int32 = 78
}

/// How the supervisor asks the snapshotter it starts to restore a snapshot now: the reason, in this
/// environment variable. Only the supervisor sets it (it is never inherited from the supervisor's own
/// environment).
public enum RestoreRequest {
    public static let environmentVariable = "HARMONYLITE_RESTORE_REASON"
}
