#if canImport(Glibc)
import Glibc
#endif
import HarmonyConfig
import IPC

/// One supervisor (or `-cleanup`) per database at a time: an exclusive flock in the node's run directory.
struct NodeLock {
    let fd: Int32
    let runDirectory: String

    static func acquire(for config: Configuration) throws -> NodeLock {
        let directory = try RunDirectoryLayout.path(for: config)
        try RunDirectory.prepare(directory)
        let path = directory + "/node.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SupervisorError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw SupervisorError("another harmonylite process is running for \(config.dbPath) (it holds \(path))")
        }
        return NodeLock(fd: fd, runDirectory: directory)
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
            throw SupervisorError("the run directory \(path) is too long for Unix socket paths; set RUNTIME_DIRECTORY to a shorter directory")
        }
        return path
    }
}

struct SupervisorError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
