import HarmonyConfig
import IPC

#if canImport(Glibc)
import SystemCalls
import Glibc
#endif

/// One supervisor (or `-cleanup`) per database at a time: an exclusive flock on a lock file next to the
/// database, `.<db file name>.harmonylite.lock`. Its place derives from the database path alone, so a node
/// started by systemd (run directory in `RUNTIME_DIRECTORY`) and a command started from a shell (run
/// directory next to the database) meet on the same lock. The holder writes its pid into the file, so a
/// refusal names it, and a supervisor its run directory on the next line, so a command from a shell
/// (`-save-snapshot`) finds the running node's embedded NATS server wherever systemd put it. The file stays
/// after the lock is released (removing a lock file races with the next holder); only the flock counts.
struct NodeLock {
    let fd: Int32
    let path: String

    /// The lock file of the database at `dbPath`.
    static func path(for config: Configuration) -> String {
        let fileName = config.dbPath.split(separator: "/").last.map(String.init) ?? "db"
        return config.dataRootDirectory + "/." + fileName + ".harmonylite.lock"
    }

    /// `runDirectory`: recorded for commands from a shell (a supervisor's; nil for `-cleanup`).
    ///
    /// The file must be the node's (`PathTrust`): one another user made first in a shared directory is
    /// refused, never locked or read. It is mode 0600, so no other user can open it to hold a lock on it
    /// (an flock needs only a read descriptor).
    static func acquire(for config: Configuration, runDirectory: String? = nil) throws -> NodeLock {
        let path = path(for: config)
        let owners = PathTrust.nodeOwners(databasePath: config.dbPath)
        do {
            try PathTrust.check(path, what: "the node lock", owners: owners, mayBeMissing: true)
        } catch {
            throw SupervisorError(.untrustedPath, cause: error)
        }
        var fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd < 0 && errno == EACCES {
            // Another user's lock file (the service's, seen from an administrator's shell): reading it is
            // enough to take or test the lock.
            fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        }
        guard fd >= 0 else { throw SupervisorError(.nodeLock, "cannot open the node lock \(path): \(SystemError.reason(errno))") }
        do {
            try PathTrust.checkOpen(fd, path: path, what: "the node lock", owners: owners)
        } catch {
            close(fd)
            throw SupervisorError(.untrustedPath, cause: error)
        }
        var info = stat()
        if fstat(fd, &info) == 0, info.st_uid == geteuid() {
            // Earlier versions made it 0644: anyone could open it and hold the lock.
            _ = fchmod(fd, 0o600)
            // Made by root (an operator's command): the node's user (the database's owner) keeps it.
            if geteuid() == 0, let nodeUser = owners.first(where: { $0 != 0 }) { _ = fchown(fd, nodeUser, gid_t.max) }
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = Self.holder(fd).map { "pid \($0)" } ?? "a process whose pid it did not record"
            close(fd)
            throw SupervisorError(.nodeLock, "another harmonylite process (\(holder)) is running for \(config.dbPath): it holds the lock \(path)")
        }
        let record = Array("\(getpid())\n\(runDirectory ?? "")\n".utf8)
        if ftruncate(fd, 0) == 0 { _ = pwrite(fd, record, record.count, 0) }
        return NodeLock(fd: fd, path: path)
    }

    /// The pid the holder wrote, if it is there and makes sense (the file is read as untrusted).
    private static func holder(_ fd: Int32) -> Int32? {
        guard let first = lines(fd).first, let pid = Int32(first), pid > 0 else { return nil }
        return pid
    }

    /// The run directory the last supervisor recorded, if any. It may be stale (that supervisor stopped):
    /// callers check for live processes there. The lock is not probed, so a supervisor starting meanwhile is
    /// never refused because of a reader.
    ///
    /// Only a lock file of the node's user (or root) is read, and only a run directory of theirs is
    /// returned (`PathTrust`): another user's lock file could name a directory where that user's fake
    /// server waits for the node password.
    static func recordedRunDirectory(for config: Configuration) throws -> String? {
        let path = path(for: config)
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw SupervisorError(.nodeLock, "cannot read the node lock \(path): \(SystemError.reason(errno))")
        }
        defer { close(fd) }
        let owners = PathTrust.nodeOwners(databasePath: config.dbPath)
        do {
            try PathTrust.checkOpen(fd, path: path, what: "the node lock", owners: owners)
        } catch {
            throw SupervisorError(.untrustedPath, cause: error)
        }
        let recorded = lines(fd)
        guard recorded.count >= 2, recorded[1].hasPrefix("/") else { return nil }
        do {
            try PathTrust.check(recorded[1], what: "the run directory the node lock names", owners: owners, mayBeMissing: true)
        } catch {
            throw SupervisorError(.untrustedPath, cause: error)
        }
        return recorded[1]
    }

    /// The file's first lines, read bounded (it is read as untrusted).
    private static func lines(_ fd: Int32) -> [String] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = pread(fd, &buffer, buffer.count, 0)
        guard count > 0 else { return [] }
        return buffer[0..<count].split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    }

    func release() { close(fd) }
}

/// Where the node keeps its sockets and generated files.
enum RunDirectoryLayout {
    /// `$RUNTIME_DIRECTORY` under systemd (`RuntimeDirectory=`), else a hidden directory next to the
    /// database named after it, so two nodes with databases in one directory do not collide.
    static func path(for config: Configuration) throws -> String {
        if let value = getenv("RUNTIME_DIRECTORY").flatMap({ String(validatingCString: $0) }), !value.isEmpty {
            // systemd separates several RuntimeDirectory= entries with colons; the first is ours.
            return String(value.split(separator: ":").first ?? Substring(value))
        }
        let fileName = config.dbPath.split(separator: "/").last.map(String.init) ?? "db"
        let path = config.dataRootDirectory + "/." + fileName + ".harmonylite"
        // sockaddr_un holds 107 bytes; the longest socket name we create is "/control.sock".
        guard path.utf8.count + "/control.sock".utf8.count < 108 else {
            throw SupervisorError(.configuration, "the run directory \(path) is too long for Unix socket paths; set RUNTIME_DIRECTORY to a shorter directory")
        }
        return path
    }

}

/// Why the node cannot start or a command of the supervisor's failed: the kind of problem, in words, and the
/// error underneath when there is one.
struct SupervisorError: Error, CustomStringConvertible {
    enum Kind: Equatable, Sendable {
        /// A setting that cannot work (a bad seed file, a port in use, a path too long).
        case configuration
        /// A program the node needs is not installed (nats-server, openssl, a worker executable).
        case missingProgram
        /// Another process holds the node lock, or the lock cannot be used.
        case nodeLock
        /// A file or directory others could change (`PathTrust`).
        case untrustedPath
        /// A file or directory of the node's cannot be made or written.
        case filesystem
        /// A child cannot be started.
        case spawn
        /// No running node answers (for `-status` and the commands that need it).
        case notRunning
        /// The cluster secret cannot be made or read.
        case clusterSecret
        /// The start is refused until an operator acts (a deleted database nothing can restore): the node
        /// exits with `SupervisorExitCode.refused`.
        case refused
    }

    var kind: Kind
    var message: String
    var cause: (any Error)?

    init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// An error whose own words say it all (it names its path or setting).
    init(_ kind: Kind, cause: any Error) {
        self.kind = kind
        self.message = "\(cause)"
        self.cause = cause
    }

    var description: String { message }
}
