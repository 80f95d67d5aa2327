import CPosix
import ChangeLog
import HarmonyConfig
import IPC
import SQLiteKit
import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// `harmonylite -config FILE -check-config`: gathers the facts `ConfigurationCheck` decides on (the
/// configuration, every key's problem, the database: exists or can be created, readable, which tables
/// replicate) without starting anything or writing anything.
enum CheckConfigCommand {
    /// The output, and the exit status (0: the node would start; 2: a problem).
    static func run(path: String, overrides: CommandLineOverrides) -> (text: String, status: Int32) {
        let (loaded, problems) = ConfigurationLoader.check(path: path, overrides: overrides)
        guard let loaded else {
            let check = ConfigurationCheck(file: path, loadProblems: problems)
            return (check.text, SupervisorExitCode.configuration)
        }
        let config = loaded.configuration
        let check = ConfigurationCheck(
            file: path, configuration: config, warnings: loaded.warnings, database: databaseFacts(config.dbPath),
            serverConfig: serverConfigFacts(config))
        return (check.text, check.passed ? 0 : SupervisorExitCode.configuration)
    }

    /// `nats.server_config` as nats-server reads it: `nats-server -t -c FILE` (parses, starts nothing).
    static func serverConfigFacts(_ config: Configuration) -> ConfigurationCheck.ServerConfigFacts {
        guard config.nats.isEmbedded, !config.nats.serverConfig.isEmpty else { return .notSet }
        guard let server = ChildSpawner.findNATSServer() else { return .unchecked("no nats-server found (PATH, HARMONYLITE_NATS_SERVER)") }
        switch runBounded(server, ["-t", "-c", config.nats.serverConfig], seconds: 10) {
        case .failure(let why): return .unchecked("\(server): \(why)")
        case .success(let (status, output)):
            if status == 0 { return .valid }
            let said = output.split(separator: "\n").last.map { String($0.prefix(1024)) } ?? "exit status \(status)"
            return .invalid(said.hasPrefix("nats-server: ") ? String(said.dropFirst(13)) : said)
        }
    }

    /// Runs `path` with `arguments`, its output (at most 64 KiB kept) and exit status; killed after `seconds`.
    private static func runBounded(_ path: String, _ arguments: [String], seconds: Double) -> Result<(Int32, String), SupervisorError> {
        let pipe: (read: Int32, write: Int32)
        do { pipe = try ChildOutput.makePipe() } catch { return .failure(error as? SupervisorError ?? SupervisorError(.spawn, "\(error)")) }
        var attributes = hl_spawn_attributes()
        attributes.redirect_output = 1
        attributes.output_fd = pipe.write
        attributes.parent_death_signal = SIGKILL
        let cArguments = ([path] + arguments).map { strdup($0) } + [nil]
        let cEnvironment: [UnsafeMutablePointer<CChar>?] = [nil]
        defer { cArguments.forEach { free($0) } }
        let pid = hl_spawn(path, cArguments, cEnvironment, &attributes)
        close(pipe.write)
        guard pid > 0 else {
            close(pipe.read)
            return .failure(SupervisorError(.spawn, "cannot execute it: \(SystemError.reason(errno))"))
        }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = monotonicSeconds() + seconds
        while true {
            let left = deadline - monotonicSeconds()
            var one = pollfd(fd: pipe.read, events: Int16(POLLIN), revents: 0)
            if left <= 0 || poll(&one, 1, Int32(left * 1000) + 1) == 0 {
                kill(pid, SIGKILL)
                break
            }
            let n = read(pipe.read, &buffer, buffer.count)
            if n < 0, errno == EINTR || errno == EAGAIN { continue }
            if n <= 0 { break }
            if output.count < 65536 { output += buffer[0..<min(n, 65536 - output.count)] }
        }
        close(pipe.read)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        let exit = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return .success((exit, String(decoding: output, as: UTF8.self)))
    }

    static func databaseFacts(_ path: String) -> ConfigurationCheck.DatabaseFacts {
        if access(path, F_OK) != 0 {
            return .missing(creatable: access(FilePaths.directory(of: path), W_OK | X_OK) == 0)
        }
        do {
            // The check writes nothing. A WAL database nothing has open would get -shm and -wal files from a
            // read-only open: open it immutable instead. With them present (a running node), read through them.
            let inUse = access(path + "-wal", F_OK) == 0 || access(path + "-shm", F_OK) == 0
            let database = try inUse ? SQLiteDatabase(readOnlyPath: path) : SQLiteDatabase(immutablePath: path)
            let catalog = try TableCatalog.read(database)
            return .readable(replicated: catalog.replicated.map(\.name).sorted(), refused: catalog.refused)
        } catch {
            return .unreadable("\(error)")
        }
    }
}
