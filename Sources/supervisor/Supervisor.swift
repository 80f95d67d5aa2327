import Foundation
import HarmonyConfig
import IPC
import Logging
import Logs
import NATSClient
import NKeys
import Signals
import Supervision

#if canImport(Glibc)
import NodeNATS
import SystemCalls
import Glibc
#endif

/// Runs the node: executes what `SupervisorStateMachine` decides, and turns the outside world (signals,
/// child exits, control-socket messages, time) into its events. Single-threaded: one poll loop.
final class Supervisor {
    private var config: Configuration
    private var machine: SupervisorStateMachine
    private let logger: Logger
    /// Creates the streams and buckets as the administrator each time the embedded server is ready.
    private let jetStreamSetup: JetStreamSetup
    private let signals: SignalDescriptor
    private let notifier = SystemdNotifier()
    private let spawner: ChildSpawner
    private let runDirectory: String
    private let listener: Int32
    private var connections: [Int32: WorkerConnection] = [:]
    /// Why a worker could not start or stopped on its own, as it said before exiting (status `cannot start: …`,
    /// `stopping: …`), by pid: said again with its exit, so the line the node stops on names the problem and
    /// the remedy.
    private var lastWords: [Int32: String] = [:]
    private var exitCode: Int32?
    private let startedAt = monotonicSeconds()
    /// The start's time to ready is said once: a reload's or a restore's READY=1 is not a start.
    private var startSaid = false
    /// The embedded server's port, readiness, liveness probe and the disk watch (`EmbeddedServerMachine`).
    private var embeddedServer: EmbeddedServerMachine
    private var probeInFlight: MonitoringProbe?
    /// The public key of `nats.seed_file`, authorized on the embedded server.
    private var nkeyPublicKey: String?
    /// JetStream's file-storage limit for the embedded server (`nats.max_file_store` or its default).
    private var maxFileStore: UInt64 = 0
    /// /metrics, /health, -status and sleep_timeout.
    private let telemetry: NodeTelemetry
    /// What `stop` tells the workers (sleep_timeout asks the lease holder for a last snapshot).
    private var stopReason = "supervisor request"
    /// The embedded nats-server's output pipes, by read descriptor (one per server process until drained).
    private var outputs: [Int32: ChildOutput] = [:]
    /// `-status` clients waiting for fresh readings: answered once every worker asked sent its heartbeat,
    /// or `statusWait` seconds after the question.
    private var pendingStatus: [(connection: WorkerConnection, fd: Int32, askedAt: Double, waiting: Set<WorkerRole>)] = []
    private static let statusWait = 1.0
    /// Emits nats-server's lines in the node's format, as process `nats-server`.
    private let natsLogHandler: LineLogHandler

    private final class WorkerConnection {
        let connection: FrameConnection
        let peer: UnixSocket.PeerCredentials
        var worker: WorkerRole?

        init(connection: FrameConnection, peer: UnixSocket.PeerCredentials) {
            self.connection = connection
            self.peer = peer
        }
    }

    /// Runs until the node stops; returns the process exit code.
    static func run(_ loaded: LoadedConfiguration) -> Int32 {
        let config = loaded.configuration
        // Before any thread exists, so every thread keeps these signals blocked.
        let signals = SignalDescriptor(signals: [SIGCHLD, SIGTERM, SIGINT, SIGHUP])
        SignalDescriptor.ignoreBrokenPipes()
        LineLogHandler.bootstrap(process: "supervisor", format: config.logging.format, verbose: config.logging.verbose, nodeID: config.nodeID)
        SecretRedaction.register(config.secretValues)
        let logger = Logger(label: "supervisor")
        for warning in loaded.warnings { logger.warning("configuration warning", metadata: ["warning": "\(warning)"]) }
        do {
            let runDirectory = try RunDirectoryLayout.path(for: config)
            let lock = try NodeLock.acquire(for: config, runDirectory: runDirectory)
            defer { lock.release() }
            try RunDirectory.prepare(runDirectory)
            do {
                try PathTrust.check(runDirectory, what: "the run directory", owners: [geteuid(), 0])
            } catch {
                throw SupervisorError(.untrustedPath, cause: error)
            }
            try createMissingDatabase(config, runDirectory: runDirectory, logger: logger)
            let supervisor = try Supervisor(config: config, runDirectory: runDirectory, signals: signals, logger: logger)
            return supervisor.loop()
        } catch {
            logger.error("the node cannot run", metadata: ["error": "\(error)"])
            return (error as? SupervisorError)?.kind == .refused ? SupervisorExitCode.refused : 1
        }
    }

    /// The production guide's recovery (delete the database and the seq map, start): a missing database is
    /// created empty (an empty file is an empty SQLite database) and marked, so the snapshotter restores it
    /// from the cluster's newest snapshot before anything replicates, or refuses the start when there is none.
    private static func createMissingDatabase(_ config: Configuration, runDirectory: String, logger: Logger) throws {
        if !config.snapshot.enabled && access(config.dbPath, F_OK) != 0 && errno == ENOENT {
            throw SupervisorError(
                .refused,
                "the database \(config.dbPath) does not exist and snapshot.enabled = false: no snapshot can restore it. Copy the "
                    + "database from another node (stopped, or with sqlite3 .backup), or enable snapshots; to start with an empty database, create it "
                    + "first (sqlite3 \(config.dbPath) 'PRAGMA user_version;')")
        }
        let fd = open(config.dbPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            if errno == EEXIST { return }
            throw SupervisorError(.filesystem, "cannot create the missing database \(config.dbPath): \(SystemError.reason(errno))")
        }
        close(fd)
        let marker = DatabaseCreatedMarker.path(runDirectory: runDirectory)
        let markerFD = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard markerFD >= 0 else {
            unlink(config.dbPath)
            throw SupervisorError(.filesystem, "cannot write \(marker): \(SystemError.reason(errno))")
        }
        close(markerFD)
        logger.warning(
            "the database did not exist: created it empty; it is restored from the cluster's newest snapshot before replication starts",
            metadata: ["path": "\(config.dbPath)"])
    }

    private init(config: Configuration, runDirectory: String, signals: SignalDescriptor, logger: Logger) throws {
        self.config = config
        self.runDirectory = runDirectory
        self.signals = signals
        self.logger = logger
        natsLogHandler = LineLogHandler(
            label: "nats-server", format: config.logging.format == "json" ? .json : .console, nodeID: config.nodeID,
            level: config.logging.verbose ? .trace : .info)
        jetStreamSetup = JetStreamSetup(logger: logger)
        // First: a port in use stops the node before anything else is made.
        telemetry = try NodeTelemetry(config: config, now: monotonicSeconds())
        if let ports = telemetry.listening { logger.info("serving /metrics and /health", metadata: ["ports": "\(ports)"]) }
        var natsServer = ""
        if !config.nats.seedFile.isEmpty {
            do {
                nkeyPublicKey = try NKeySeed(contentsOf: config.nats.seedFile).publicKey
            } catch {
                throw SupervisorError(.configuration, "nats.seed_file \(config.nats.seedFile): \(error)")
            }
        }
        if config.nats.isEmbedded {
            guard let found = ChildSpawner.findNATSServer() else {
                throw SupervisorError(
                    .missingProgram, "nats-server not found (install Debian's nats-server package, or set [nats] urls to use an external NATS)")
            }
            natsServer = found
            try Self.createDirectory(config.embeddedStoreDirectory)
            let secret: (secret: [UInt8], created: Bool)
            do {
                secret = try ClusterSecret.loadOrCreate(at: config.clusterSecretPath)
            } catch {
                throw SupervisorError(.clusterSecret, cause: error)
            }
            if secret.created {
                logger.warning(
                    "created the cluster secret: copy it to every other node of this cluster (same path, or nats.cluster_secret_file) before they start; servers with another secret cannot join as routes",
                    metadata: ["path": "\(config.clusterSecretPath)", "mode": "0600"])
            }
            self.config.embeddedCredentials = ClusterSecret.credentials(secret: secret.secret, nodeID: config.nodeID)
            self.config.snapshotSigningKey = ClusterSecret.snapshotSigningKey(secret: secret.secret)
            if !config.clusterAddress.isEmpty || !config.clusterPeers.isEmpty, config.nats.routeTLSCertFile.isEmpty, !config.nats.allowPlaintextRoutes {
                let made = try RouteCertificates.make(secret: secret.secret, config: config, runDirectory: runDirectory)
                self.config.nats.routeTLSCertFile = made.certFile
                self.config.nats.routeTLSKeyFile = made.keyFile
                self.config.nats.routeTLSCAFile = made.caFile
                logger.info("routes run TLS with a certificate made from the cluster secret", metadata: ["certificate": "\(made.certFile)"])
                if config.replicationLog.publishForUpstream {
                    // Upstream's embedded servers speak plaintext routes only: a TLS route to them fails its handshake.
                    logger.warning(
                        "publish_for_upstream is on but routes run TLS, which upstream HarmonyLite's embedded servers cannot join: during the upgrade set nats.allow_plaintext_routes = true (docs/upgrading-from-harmonylite.md)"
                    )
                }
            }
            SecretRedaction.register(self.config.secretValues)
            var fileSystem = statvfs()
            let total = statvfs(config.embeddedStoreDirectory, &fileSystem) == 0 ? UInt64(fileSystem.f_blocks) &* UInt64(fileSystem.f_frsize) : 0
            maxFileStore = config.nats.maxFileStore > 0 ? config.nats.maxFileStore : EmbeddedServerConfig.defaultMaxFileStore(fileSystemBytes: total)
        } else {
            self.config.natsClientURLs = config.nats.urls
            self.config.snapshotSigningKey = try Self.snapshotSigningKeyForExternalNATS(config, logger: logger)
            SecretRedaction.register(self.config.secretValues)
        }
        embeddedServer = EmbeddedServerMachine(
            storeDirectory: config.embeddedStoreDirectory,
            heartbeatTimeout: Double(config.settings(for: .nats).heartbeatTimeout) / 1000,
            places: Self.watchedPlaces(self.config), now: monotonicSeconds(),
            awaitsMetaCurrency: !config.clusterAddress.isEmpty || !config.clusterPeers.isEmpty)
        let socketPath = runDirectory + "/" + ControlChannel.socketName
        spawner = ChildSpawner(executableDirectory: ChildSpawner.ownDirectory(), controlSocketPath: socketPath, natsServerPath: natsServer)
        listener = try UnixSocket.listen(path: socketPath)
        try UnixSocket.setNonBlocking(listener)

        let roles = WorkerRole.allCases.filter { $0 != .nats || config.nats.isEmbedded }
        for name in roles where name.speaksControlProtocol && access(spawner.executable(for: name), X_OK) != 0 {
            throw SupervisorError(
                .missingProgram, "worker executable \(spawner.executable(for: name)) is missing: install all five harmonylite executables side by side")
        }
        let specs = roles.map { ChildSpec(role: $0, settings: config.settings(for: $0)) }
        let watchdog = notifier.watchdogInterval
        machine = SupervisorStateMachine(children: specs, watchdogInterval: watchdog, randomUnit: { Double.random(in: 0..<1) })
        if let watchdog {
            let slowest = specs.filter(\.speaksControlProtocol).map { Double($0.settings.heartbeatTimeout) / 1000 }.max() ?? 0
            if slowest > watchdog {
                logger.warning(
                    "WatchdogSec is shorter than twice the longest heartbeat_timeout: systemd may kill the node while one worker is being replaced",
                    metadata: ["watchdog_s": "\(watchdog * 2)", "heartbeat_timeout_s": "\(slowest)"])
            }
        }
        logger.info("node starting", metadata: ["node_id": "\(config.nodeID)", "database": "\(config.dbPath)", "run_directory": "\(runDirectory)"])
    }

    // MARK: the loop

    private func loop() -> Int32 {
        process(.start)
        while exitCode == nil {
            var descriptors = [pollfd(fd: signals.fd, events: Int16(POLLIN), revents: 0), pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
            let connectionFDs = Array(connections.keys)
            for fd in connectionFDs {
                let events = Int16(POLLIN) | (connections[fd]!.connection.hasPendingOutput ? Int16(POLLOUT) : 0)
                descriptors.append(pollfd(fd: fd, events: events, revents: 0))
            }
            let outputFDs = Array(outputs.keys)
            for fd in outputFDs { descriptors.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            let probe = probeInFlight.flatMap { $0.fd >= 0 ? $0 : nil }
            if let probe { descriptors.append(pollfd(fd: probe.fd, events: probe.pollEvents, revents: 0)) }
            // A failed wait (EINVAL, ENOMEM) is taken as a short timeout: the loop's timers still run.
            _ = try? Poll.wait(&descriptors, timeoutMilliseconds: pollTimeout())
            if let probe, descriptors[descriptors.count - 1].revents != 0 { probe.advance() }
            if descriptors[0].revents != 0 { handleSignals() }
            if descriptors[1].revents != 0 { acceptConnections() }
            for (offset, fd) in connectionFDs.enumerated() where descriptors[offset + 2].revents != 0 {
                serviceConnection(fd)
            }
            for (offset, fd) in outputFDs.enumerated() where descriptors[offset + 2 + connectionFDs.count].revents != 0 {
                if let output = outputs[fd], !output.drain() { finished(output) }
            }
            answerStatusQueries(now: monotonicSeconds())
            if let finished = probeInFlight, let result = finished.result {
                probeInFlight = nil
                embedded(
                    finished.path == EmbeddedServerProbe.metaCurrencyPath
                        ? .metaCurrencyChecked(pid: finished.pid, result) : .probeFinished(pid: finished.pid, result))
            }
            embedded(.tick)
            process(.tick)
            if telemetry.tick(machine, now: monotonicSeconds()) {
                stopReason = ControlMessage.sleepTimeoutReason
                process(.terminate(reason: .sleepTimeout(seconds: telemetry.sleepTimeoutSeconds)))
            }
        }
        telemetry.stop()
        for fd in Array(connections.keys) { closeConnection(fd) }
        close(listener)
        unlink(runDirectory + "/" + ControlChannel.socketName)
        return exitCode ?? 1
    }

    private func pollTimeout() -> Int32 {
        var timeout = 1.0
        if let deadline = machine.nextDeadline { timeout = min(timeout, max(0, deadline - monotonicSeconds())) }
        for query in pendingStatus { timeout = min(timeout, max(0, query.askedAt + Self.statusWait - monotonicSeconds())) }
        timeout = min(timeout, max(0, embeddedServer.nextDeadline - monotonicSeconds()))
        return Int32((timeout * 1000).rounded(.up))
    }

    private func process(_ event: SupervisorStateMachine.Event) {
        for action in machine.handle(event, now: monotonicSeconds()) { execute(action) }
    }

    private func execute(_ action: SupervisorStateMachine.Action) {
        switch action {
        case .spawn(let child):
            spawn(child)
        case .spawnToRestore(let child, let reason):
            spawn(child, environment: [RestoreRequest.environmentVariable + "=" + reason])
        case .requestStop(let child, let pid):
            if let fd = connections.first(where: { $0.value.worker == child })?.key {
                send(.stop(reason: stopReason), to: fd)
            } else {
                // nats-server shuts down the same on both, but exits 0 only on SIGINT (1 on SIGTERM).
                kill(pid, child == .nats ? SIGINT : SIGTERM)
            }
        case .kill(let pid):
            embedded(.killing(pid: pid))
            kill(pid, SIGKILL)
        case .notify(let state):
            notifier.notify(state)
            if case .ready = state, !startSaid {
                startSaid = true
                logger.info("ready since start", metadata: ["seconds": "\(String(format: "%.2f", monotonicSeconds() - startedAt))"])
            }
        case .report(let report):
            logger.log(level: report.level, report.message, metadata: report.metadata)
        case .exit(let code):
            exitCode = code
        }
    }

    // MARK: children

    private func spawn(_ child: WorkerRole, environment: [String] = []) {
        var arguments: [String] = []
        if child == .nats {
            do {
                for case .writeConfiguration(let clientPort) in embeddedServer.handle(.starting, now: monotonicSeconds()) {
                    arguments = try prepareNATSConfiguration(clientPort: clientPort)
                }
            } catch {
                process(.spawnFailed(child: child, reason: "\(error)"))
                return
            }
        }
        let pipe: (read: Int32, write: Int32)
        do {
            pipe = try ChildOutput.makePipe()
        } catch {
            process(.spawnFailed(child: child, reason: "\(error)"))
            return
        }
        // A worker's stderr is the pipe: it still writes journald priorities when the supervisor's stderr is the journal.
        let priorities = child != .nats && natsLogHandler.writesPriorities ? [LineLogHandler.journalPrioritiesVariable + "=1"] : []
        let result = spawner.spawn(
            child, arguments: arguments, environment: environment + priorities, output: pipe.write,
            settings: config.settings(for: child))
        close(pipe.write)
        switch result {
        case .success(let pid):
            let source: ChildOutput.Source = child == .nats ? .nats : .worker(json: config.logging.format == "json")
            outputs[pipe.read] = ChildOutput(fd: pipe.read, pid: pid, source: source, handler: child == .nats ? natsLogHandler : workerLogHandler(child))
            process(.spawned(child: child, pid: pid))
            if child == .nats { embedded(.spawned(pid: pid)) }
        case .failure(let error):
            close(pipe.read)
            process(.spawnFailed(child: child, reason: error.description))
        }
    }

    private func prepareNATSConfiguration(clientPort: Int?) throws -> [String] {
        let path = runDirectory + "/nats-server.conf"
        let text = EmbeddedServerConfig.render(
            config, runDirectory: runDirectory, clientPort: clientPort, nkeyPublicKey: nkeyPublicKey,
            credentials: config.embeddedCredentials, maxFileStore: maxFileStore,
            monitoringInServerConfig: !config.nats.serverConfig.isEmpty
                && ServerConfigKeys.setsMonitoring(path: config.nats.serverConfig, read: Self.readBounded),
            serverName: embeddedServerName())
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SupervisorError(.filesystem, "cannot write \(path): \(SystemError.reason(errno))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw SupervisorError(.filesystem, "cannot write \(path): \(SystemError.reason(errno))") }
        return ["-c", path]
    }

    /// The embedded server's name (`EmbeddedServerConfig.serverName`), recorded in its store at the first start.
    private func embeddedServerName() -> String {
        let store = config.embeddedStoreDirectory
        let record = store + "/" + EmbeddedServerConfig.serverNameFile
        let recorded = Self.readBounded(record)
        let name = EmbeddedServerConfig.serverName(config, recorded: recorded, storeInUse: FileManager.default.fileExists(atPath: store + "/jetstream"))
        if recorded == nil {
            try? FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
            if !FileManager.default.createFile(atPath: record, contents: Data((name + "\n").utf8), attributes: [.posixPermissions: 0o600]) {
                logger.warning("cannot record the embedded server's name", metadata: ["path": "\(record)"])
            }
        }
        return name
    }

    /// A file of at most `ServerConfigKeys.maximumBytes`, as text; nil when unreadable or longer.
    private static func readBounded(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: ServerConfigKeys.maximumBytes + 1), data.count <= ServerConfigKeys.maximumBytes else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// Carries out what `EmbeddedServerMachine` decides about the embedded server and the disks.
    private func embedded(_ event: EmbeddedServerMachine.Event) {
        for action in embeddedServer.handle(event, now: monotonicSeconds()) { execute(action) }
    }

    private func execute(_ action: EmbeddedServerMachine.Action) {
        switch action {
        case .writeConfiguration:
            break  // written by `spawn`, which asks for it
        case .readPortsFile(let pid):
            let port = NATSPortsFile.clientPort(runDirectory: runDirectory, pid: pid)
            let monitoring = port == nil ? [] : NATSPortsFile.monitoringAddresses(runDirectory: runDirectory, pid: pid)
            embedded(.portsFile(pid: pid, clientPort: port, monitoring: monitoring))
        case .serverReady(_, let port, let monitoring):
            config.natsClientURLs = [EmbeddedServerConfig.clientURL(config, port: port)]
            telemetry.natsURLs = config.natsClientURLs
            jetStreamSetup.start(config)
            telemetry.natsMonitoringURL = monitoring.map { "http://\($0.host):\($0.port)" }
            process(.ready(child: .nats, detail: "listening for clients on port \(port)" + (monitoring.map { ", monitoring on \($0.host):\($0.port)" } ?? "")))
        case .startProbe(let pid, let address):
            probeInFlight = MonitoringProbe(pid: pid, host: address.host, port: address.port)
        case .checkMetaCurrency(let pid, let address):
            probeInFlight = MonitoringProbe(pid: pid, host: address.host, port: address.port, path: EmbeddedServerProbe.metaCurrencyPath)
        case .dropProbe:
            probeInFlight = nil
        case .lifeSign:
            process(.lifeSign(child: .nats))
        case .measureFreeSpace(let place):
            if let free = Self.freeBytes(place.path) { embedded(.freeSpace(place, freeBytes: free)) }
        case .measureStoreSpace(let check):
            if let free = Self.freeBytes(config.embeddedStoreDirectory) { embedded(.storeSpace(check, freeBytes: free)) }
        case .report(let report):
            logger.log(report)
        }
    }

    /// The bytes an unprivileged process may still write on the filesystem holding `path`; nil when unknown.
    private static func freeBytes(_ path: String) -> UInt64? {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return nil }
        return UInt64(stats.f_bavail) &* UInt64(stats.f_frsize)
    }

    /// The database's directory and the embedded JetStream store (`EmbeddedServerMachine.watchedPlaces`).
    private static func watchedPlaces(_ config: Configuration) -> [DiskSpaceWatch.Place] {
        let database = FilePaths.directory(of: config.dbPath)
        let store = config.nats.isEmbedded ? config.embeddedStoreDirectory : nil
        var first = stat(), second = stat()
        let same = store.map { stat(database, &first) == 0 && stat($0, &second) == 0 && first.st_dev == second.st_dev } ?? false
        return EmbeddedServerMachine.watchedPlaces(databaseDirectory: database, storeDirectory: store, sameFileSystem: same)
    }

    private func handleSignals() {
        for signal in signals.drain() {
            switch signal {
            case SIGCHLD: reapChildren()
            case SIGHUP: process(.reload)
            default: process(.terminate(reason: signal == SIGINT ? .sigint : .sigterm))
            }
        }
    }

    private func reapChildren() {
        while true {
            var status: Int32 = 0
            var usage = rusage()
            let pid = wait4(-1, &status, WNOHANG, &usage)
            guard pid > 0 else { return }
            let exit: ExitStatus = status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .killed(by: status & 0x7f)
            for (fd, connection) in connections where connection.peer.pid == pid {
                serviceConnection(fd)  // its last words (why it could not start) may still be unread
                closeConnection(fd)
            }
            for (fd, output) in outputs where output.pid == pid {
                // The server's last lines (why it failed) are in the pipe still: read them before its exit is said.
                var open = output.drain()
                while open {
                    var one = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    guard poll(&one, 1, 100) > 0 else { break }
                    open = output.drain()
                }
                if open { close(fd) }
                finished(output)
            }
            let words = lastWords.removeValue(forKey: pid)
            let note = "peak resident memory \(usage.ru_maxrss / 1024) MiB" + (words.map { "; \($0)" } ?? "")
            let serverSaid = words.flatMap { $0.hasPrefix(Self.natsSaid) ? String($0.dropFirst(Self.natsSaid.count)) : nil }
            let attempts = min(EmbeddedServerMachine.startAttempts, Int(config.settings(for: .nats).restartIntensity) + 1)
            if let failure = embeddedServer.startFailed(pid: pid, lastWords: serverSaid, attempts: attempts) {
                let problem = failure.problem(holder: failure.port.flatMap { PortHolder.describe(port: $0) })
                process(.misconfigured(pid: pid, status: exit, note: note, problem: problem))
            } else {
                process(.exited(pid: pid, status: exit, note: note))
            }
            embedded(.exited(pid: pid))
        }
    }

    /// Answers the `-status` clients whose workers all reported (their observations, sent right after the
    /// heartbeat, read in the same turn), or whose wait is over.
    private func answerStatusQueries(now: Double) {
        guard !pendingStatus.isEmpty else { return }
        let due = pendingStatus.filter { $0.waiting.isEmpty || now - $0.askedAt >= Self.statusWait }
        guard !due.isEmpty else { return }
        pendingStatus.removeAll { query in due.contains { $0.connection === query.connection } }
        let report = telemetry.statusJSON(machine, now: now)
        for query in due where connections[query.fd] === query.connection {
            send(.statusReport(json: report), to: query.fd)
            closeConnection(query.fd)
        }
    }

    /// How the embedded server's last failure line starts in the note of its exit.
    private static let natsSaid = "nats-server said: "

    /// A child's output pipe is closed (it exited): what it said last on failing becomes its last words.
    private func finished(_ output: ChildOutput) {
        outputs[output.fd] = nil
        guard let failure = output.lastFailure else { return }
        switch output.source {
        case .nats: lastWords[output.pid] = Self.natsSaid + failure
        case .worker: if lastWords[output.pid] == nil { lastWords[output.pid] = "it wrote: \(failure)" }  // its own reason first
        }
    }

    /// Emits a worker's foreign lines (a crash report) in the node's format, as that worker.
    private func workerLogHandler(_ child: WorkerRole) -> LineLogHandler {
        LineLogHandler(label: child.rawValue, format: config.logging.format == "json" ? .json : .console, nodeID: config.nodeID, level: .info)
    }

    // MARK: control connections

    private func acceptConnections() {
        while let fd = try? UnixSocket.accept(listener) {
            guard let peer = try? UnixSocket.peerCredentials(fd), (try? UnixSocket.setNonBlocking(fd)) != nil else {
                close(fd)
                continue
            }
            let connection = FrameConnection(fd: fd, maximumFrameSize: 1 << 20)
            guard peer.uid == getuid() else {
                logger.warning("refused a control connection", metadata: ["peer_pid": "\(peer.pid)", "error": "\(IPCError(.peerNotAllowed(uid: peer.uid)))"])
                connection.close()
                continue
            }
            connections[fd] = WorkerConnection(connection: connection, peer: peer)
        }
    }

    private func serviceConnection(_ fd: Int32) {
        guard let entry = connections[fd] else { return }
        do {
            try entry.connection.flush()
            for frame in try entry.connection.readAvailable() {
                try handle(try ControlMessage(frame: frame), from: entry, fd: fd)
            }
        } catch {
            if error.kind != .connectionClosed {
                logger.warning(
                    "closing a worker's control connection",
                    metadata: ["child": "\(entry.worker.map(\.rawValue) ?? "unknown")", "peer_pid": "\(entry.peer.pid)", "error": "\(error)"])
            }
            closeConnection(fd)
        }
    }

    private func handle(_ message: ControlMessage, from entry: WorkerConnection, fd: Int32) throws(IPCError) {
        guard let worker = entry.worker else {
            if message == .statusQuery {
                // `harmonylite -status`: every worker reports now (the broker reads the stream heads first);
                // one answer once they have, then the connection is closed.
                guard !pendingStatus.contains(where: { $0.connection === entry }) else { throw IPCError(.handshakeFailed("a second status query")) }
                var asked: Set<WorkerRole> = []
                for (workerFD, other) in connections {
                    guard let worker = other.worker else { continue }
                    send(.reportNow, to: workerFD)
                    asked.insert(worker)
                }
                pendingStatus.append((entry, fd, monotonicSeconds(), asked))
                return
            }
            guard !pendingStatus.contains(where: { $0.connection === entry }) else { throw IPCError(.handshakeFailed("a status client sent more")) }
            guard case .hello(let hello) = message else { throw IPCError(.handshakeFailed("the first message was not hello")) }
            let role: WorkerRole
            switch WorkerHandshake.check(hello, peer: entry.peer.pid, started: machine.pid(of:)) {
            case .success(let accepted):
                role = accepted
            case .failure(let refusal):
                send(.rejected(reason: "\(refusal)"), to: fd)
                throw IPCError(.handshakeFailed("\(refusal)"))
            }
            entry.worker = role
            send(
                .welcome(
                    .init(
                        heartbeatIntervalMilliseconds: config.settings(for: role).heartbeatInterval, configuration: config.forWorker(role).encodedForWorkers())),
                to: fd)
            process(.lifeSign(child: role))
            return
        }
        switch message {
        case .ready(let detail):
            telemetry.workerReady(worker)
            process(.ready(child: worker, detail: detail))
        case .heartbeat(let counters):
            telemetry.heartbeat(worker: worker, pid: entry.peer.pid, counters: counters)
            for index in pendingStatus.indices { pendingStatus[index].waiting.remove(worker) }
            process(.lifeSign(child: worker))
        case .observations(let list):
            telemetry.observed(list, now: monotonicSeconds())
        case .status(let text):
            // The worker logged this line itself (every status is also a line of its own): said again only
            // at debug level, and with the worker's exit when it is why the worker stopped.
            logger.debug("worker status", metadata: ["child": "\(worker)", "status": "\(text)"])
            if telemetry.workerStatus(worker, text), !machine.isReady {
                // A start that waits loudly (said again every 10 s) is not one systemd's TimeoutStartSec= should kill.
                notifier.notify(.extendTimeout(microseconds: 60_000_000, .workerWaiting(worker, said: text)))
            }
            if text.hasPrefix(ControlMessage.cannotStartPrefix) || text.hasPrefix(ControlMessage.stoppingPrefix) { lastWords[entry.peer.pid] = text }
            process(.lifeSign(child: worker))
        default:
            throw IPCError(.handshakeFailed("unexpected message from \(worker)"))
        }
    }

    private func send(_ message: ControlMessage, to fd: Int32) {
        guard let entry = connections[fd] else { return }
        entry.connection.enqueue(message.frame)
        _ = try? entry.connection.flush()
    }

    private func closeConnection(_ fd: Int32) {
        connections[fd]?.connection.close()
        connections[fd] = nil
    }

    /// Creates the JetStream store directory (`<db dir>/nats/<node name>`, mode 0700 for what is made here)
    /// and checks it is the node's: it and `<db dir>/nats` owned by this user and writable by no one else,
    /// the directories above by this user or root, or sticky (`PathTrust`). A store another user made or
    /// can write could feed nats-server any stream.
    private static func createDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw SupervisorError(.filesystem, "cannot create the JetStream store directory \(path): \(error.localizedDescription)")
        }
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        let storeRoot = String(trimmed[..<(trimmed.lastIndex(of: "/") ?? trimmed.endIndex)])
        do {
            // `nats/` itself (it may hold other nodes' stores: theirs are checked by them), then this node's.
            try PathTrust.check(storeRoot, what: "the JetStream store directory", owners: [geteuid()])
            try PathTrust.check(trimmed, what: "the JetStream store directory", owners: [geteuid()])
        } catch {
            throw SupervisorError(.untrustedPath, cause: error)
        }
    }
}
