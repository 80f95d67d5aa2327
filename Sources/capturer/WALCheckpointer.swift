import CapturePipeline
import Foundation
import Logging
import SQLiteKit
import SystemCalls

/// The capturer's checkpointer (`CheckpointPolicy`): a thread with a connection of its own, so that the
/// copy and its fsyncs never hold up a look or a publish. It wakes only when the capturer's loop pokes it
/// (after a look that saw a commit): an idle node does nothing here.
final class WALCheckpointer: @unchecked Sendable {
    private let path: String
    private let logger: Logger
    /// Used by the checkpointer's thread only.
    private let database: SQLiteDatabase
    // `poked` and `stopped` are guarded by `condition`.
    private let condition = NSCondition()
    private var poked = false
    private var stopped = false

    /// `path`: the database; its connection waits at most 4 ms for the write lock when restarting the WAL (the
    /// application's commit keeps it most of the time at saturation; the next poke tries again).
    init(path: String, logger: Logger) throws {
        self.path = path
        self.logger = logger
        database = try SQLiteDatabase(existingPath: path, busyTimeoutMilliseconds: 4)
        let thread = Thread { [self] in run() }
        thread.name = "checkpoint"
        thread.start()
    }

    /// A commit was seen: the WAL may have grown.
    func poke() {
        condition.lock()
        poked = true
        condition.signal()
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func run() {
        var policy = CheckpointPolicy()
        var failureLogged = -Double.infinity
        while true {
            condition.lock()
            while !poked && !stopped { condition.wait() }
            poked = false
            let stop = stopped
            condition.unlock()
            if stop { return }
            let now = monotonicSeconds()
            guard policy.shouldCheckpoint(walFrames: WALIndex.frames(databasePath: path), now: now) else { continue }
            do {
                // The bulk without any lock, then the restart: only the frames written meanwhile are copied
                // while it holds the write lock.
                _ = try database.checkpoint(.passive)
                _ = try database.checkpoint(.restart)
            } catch {
                // The application's commits checkpoint as they always did meanwhile: nothing is at stake.
                if now - failureLogged >= 60 {
                    failureLogged = now
                    logger.warning("cannot checkpoint the WAL; the application's commits do it meanwhile", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
