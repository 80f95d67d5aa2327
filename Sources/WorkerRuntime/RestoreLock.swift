#if canImport(Glibc)
import SystemCalls
import Glibc
#endif

/// Keeps a snapshot restore and the workers that use the database's cursor and change log apart, enforced
/// by the kernel: the applier and the capturer hold a shared `flock` on `restore.lock` in the node's run
/// directory for as long as they run; the snapshotter restores only while it holds the same lock
/// exclusively. So a snapshotter that restarts (a crash, a reload) while they run never restores under
/// them, and neither starts while a restore runs. The lock goes with the process, even on `kill -9`.
public final class RestoreLock {
    private let fd: Int32
    public let path: String

    public static func path(runDirectory: String) -> String { runDirectory + "/restore.lock" }

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// For the applier and the capturer, held until the process ends. Throws when a restore runs.
    public static func holdWhileRunning(runDirectory: String) throws(WorkerExit) -> RestoreLock {
        let path = path(runDirectory: runDirectory)
        let fd = try open(path)
        guard flock(fd, LOCK_SH | LOCK_NB) == 0 else {
            close(fd)
            throw .failed("a snapshot restore is running (the snapshotter holds \(path)): starting once it is over")
        }
        return RestoreLock(fd: fd, path: path)
    }

    /// For the snapshotter, around a restore: nil while the applier or the capturer runs.
    public static func takeForRestore(runDirectory: String) throws(WorkerExit) -> RestoreLock? {
        let path = path(runDirectory: runDirectory)
        let fd = try open(path)
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        return RestoreLock(fd: fd, path: path)
    }

    private static func open(_ path: String) throws(WorkerExit) -> Int32 {
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .failed("cannot open \(path): \(SystemError.reason(errno))") }
        return fd
    }
}
