/// Exit codes with a meaning between workers and the supervisor (anything else non-zero is a crash).
public enum WorkerExitCode {
    /// A stream no longer holds changes this node has not applied: only a snapshot restore, which happens
    /// at the node's start, can bring it back. The supervisor stops the node (exit 1) instead of restarting
    /// the worker into the same gap; systemd's `Restart=on-failure` then starts it again, and it restores.
    public static let restoreNeeded: Int32 = 3
}
