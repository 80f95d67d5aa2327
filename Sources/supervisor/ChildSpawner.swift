import CPosix
import HarmonyConfig
import IPC
import Logs

#if canImport(Glibc)
import SystemCalls
import Glibc
#endif

/// Starts child processes with their kernel limits and a parent-death signal, and a clean environment:
/// only the supervisor may talk to systemd, so the notify and watchdog variables are not inherited.
struct ChildSpawner {
    let executableDirectory: String
    let controlSocketPath: String
    let natsServerPath: String

    static let privateVariables = [
        "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
        RestoreRequest.environmentVariable, LineLogHandler.journalPrioritiesVariable,
    ]

    /// The path of a worker's executable: next to the supervisor's, as `harmonylite-<name>`.
    func executable(for child: WorkerRole) -> String {
        child == .nats ? natsServerPath : executableDirectory + "/" + child.executableName
    }

    /// `extraEnvironment`: `NAME=value` entries for this child only (a restore request). `output`: a
    /// descriptor that becomes the child's standard output and error (nil: it shares the supervisor's).
    func spawn(
        _ child: WorkerRole, arguments: [String], environment extraEnvironment: [String] = [], output: Int32? = nil,
        settings: WorkerSettings
    ) -> Result<Int32, SupervisorError> {
        let path = executable(for: child)
        let argv0 = child.executableName
        var environment = currentEnvironment().filter { entry in
            !Self.privateVariables.contains { entry.hasPrefix($0 + "=") } && !entry.hasPrefix(ControlChannel.environmentVariable + "=")
        }
        if child.speaksControlProtocol { environment.append(ControlChannel.environmentVariable + "=" + controlSocketPath) }
        environment += extraEnvironment

        var attributes = hl_spawn_attributes()
        attributes.address_space_bytes = Int64(clamping: settings.memoryLimit)
        attributes.open_files = Int64(clamping: settings.openFiles)
        if let nice = settings.nice {
            attributes.nice = Int32(nice)
            attributes.set_nice = 1
        }
        attributes.parent_death_signal = SIGKILL
        attributes.new_process_group = 1
        if let output {
            attributes.redirect_output = 1
            attributes.output_fd = output
        }

        let cArguments = ([argv0] + arguments).map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup($0) } + [nil]
        defer {
            cArguments.forEach { free($0) }
            cEnvironment.forEach { free($0) }
        }
        let pid = hl_spawn(path, cArguments, cEnvironment, &attributes)
        guard pid > 0 else {
            return .failure(SupervisorError(.spawn, "cannot execute \(path): \(SystemError.reason(errno))"))
        }
        return .success(pid)
    }

    private func currentEnvironment() -> [String] {
        var result: [String] = []
        var pointer = environ
        while let entry = pointer.pointee {
            result.append(String(cString: entry))
            pointer += 1
        }
        return result
    }

    /// `nats-server` from `HARMONYLITE_NATS_SERVER` or the PATH (Debian installs it in /usr/sbin).
    static func findNATSServer() -> String? {
        if let explicit = getenv("HARMONYLITE_NATS_SERVER").flatMap({ String(validatingCString: $0) }), !explicit.isEmpty {
            return explicit
        }
        let path = getenv("PATH").flatMap { String(validatingCString: $0) } ?? ""
        for directory in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin", "/usr/bin"] {
            let candidate = directory + "/nats-server"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// The directory of the running executable.
    static func ownDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return "." }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return FilePaths.directory(of: path)
    }
}
