/// When the capturer checkpoints the WAL itself. SQLite runs a checkpoint in the commit of whichever
/// connection finds the WAL at 1,000 frames or more (`wal_autocheckpoint`): on the application's own thread,
/// after its commit, with two fsyncs and the copy (0.4–4 ms each time, measured; at saturation a quarter of
/// the application's time went there, and readers make it try again at the next commits). So the capturer's
/// checkpointer starts before that: at `startFrames` it copies what it can without any lock (passive), then
/// restarts the WAL from its beginning (which holds the write lock only for the frames written meanwhile),
/// and the application's commits find the WAL short and never checkpoint. Asked after every look that saw
/// a commit; pure.
public struct CheckpointPolicy: Sendable, Equatable {
    /// Below SQLite's default 1,000, with room for the frames written while the checkpoint runs.
    public var startFrames = 500
    /// Attempts no closer than this (a restart that found the write lock taken is tried again then).
    public var minimumInterval = 0.002
    private var lastAttempt = -Double.infinity

    public init() {}

    /// Whether to checkpoint now, given the WAL's frames (nil: unknown, do nothing).
    public mutating func shouldCheckpoint(walFrames: Int?, now: Double) -> Bool {
        guard let walFrames, walFrames >= startFrames, now - lastAttempt >= minimumInterval else { return false }
        lastAttempt = now
        return true
    }
}
