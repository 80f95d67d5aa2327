import HarmonyConfig

/// The embedded nats-server's handling, with no I/O: which port it listens on, when it counts as ready, when
/// its liveness is probed and what an answer means, when the disks are measured and what a reading leads to.
/// The supervisor feeds it events (with the monotonic time) and carries out the actions it returns; the
/// server's start, restarts and kill stay `SupervisorStateMachine`'s decisions.
///
/// The rules:
/// - **Ports.** The first start listens on `nats.bind_address`'s port (-1: one the kernel picks). Once a server
///   said (in its ports file) which client port it got, every restart listens on that port again: the broker
///   and every worker got the URL with it, and keep running (one-for-one restarts) while the server is
///   replaced. The monitoring port is not kept: each server gets a fresh loopback port (or the one
///   `nats.server_config` sets), read from its own ports file, since only the supervisor's probe uses it. The
///   route and leaf ports come from the configuration and never change.
/// - **Ready.** A started server is ready once its ports file names its client port; the file is read every
///   `portsFileInterval` until it does. The file is named after the server's pid, so an earlier server's is
///   never taken for it. In a cluster (`awaitsMetaCurrency`), the node's first server is ready only once it is
///   also current with the JetStream meta leader (`EmbeddedServerProbe.metaCurrencyPath`, asked every
///   `metaCheckInterval`): a node that says ready has its cluster's streams, so a rolling procedure's "wait until
///   ready" waits for the meta layer too. Without it, a server that started with no cluster state (`$SYS` moved
///   aside in the upgrade from upstream) said ready at once, and the next node's switch left two servers without
///   the state, a majority that elected a leader without the streams' assignments (docs/upgrading-from-harmonylite.md).
///   A restarted server is ready as before: the workers are running and keep going.
/// - **Liveness.** Once ready, its monitoring endpoint is probed (`EmbeddedServerProbe`: cadence, timeout,
///   verdict). An answer is a life sign; a refused, failed or unanswered probe, an answer that is not HTTP and
///   one that says JetStream is disabled are not, so the supervisor's machine restarts a server silent for
///   `[workers.nats] heartbeat_timeout`. A server without a monitoring port is not probed: it is alive while it
///   runs. A probe problem is reported once in a row, and its end once.
/// - **Disks.** The filesystems under the database and the JetStream store are measured every second
///   (`DiskSpaceWatch`); below 1 MiB free one is full (reported once), at 2 MiB it is back. When a probe goes
///   unanswered and when a ready server is killed, the store's free space is measured and reported too: a full
///   disk is what wedges nats-server 2.9.
public struct EmbeddedServerMachine: Sendable {
    /// Where a server listens, as its ports file says.
    public typealias Address = HostPort

    /// How a probe of the monitoring endpoint ended.
    public enum ProbeResult: Equatable, Sendable {
        /// The whole answer (status line, headers, body), at most `EmbeddedServerProbe.maximumResponseBytes`.
        case answered([UInt8])
        case failed(String)
    }

    /// Why the JetStream store's free space is measured outside the regular watch.
    public enum StoreCheck: Equatable, Sendable {
        /// A ready server is being killed (silent too long, or not stopped in time).
        case killing
        /// A probe went unanswered for `EmbeddedServerProbe.timeout`.
        case unanswered
    }

    public enum Event: Equatable, Sendable {
        /// A server is about to be started: its configuration is written first.
        case starting
        /// A server process started.
        case spawned(pid: Int32)
        /// A server process exited (or was reaped).
        case exited(pid: Int32)
        /// The ports file of `pid`, as read for `readPortsFile`: the client port (nil: not written yet) and the
        /// addresses of the monitoring endpoint (`probeAddress` chooses the one probed).
        case portsFile(pid: Int32, clientPort: Int?, monitoring: [Address])
        /// A check started by `checkMetaCurrency` for the server `pid` ended.
        case metaCurrencyChecked(pid: Int32, ProbeResult)
        /// A probe started by `startProbe` for the server `pid` ended.
        case probeFinished(pid: Int32, ProbeResult)
        /// The supervisor's state machine kills `pid`.
        case killing(pid: Int32)
        /// The free bytes measured for `measureFreeSpace`.
        case freeSpace(DiskSpaceWatch.Place, freeBytes: UInt64)
        /// The free bytes of the JetStream store's filesystem, measured for `measureStoreSpace`.
        case storeSpace(StoreCheck, freeBytes: UInt64)
        /// The loop turned.
        case tick
    }

    public enum Action: Equatable, Sendable {
        /// Write the server's configuration, listening for clients on `clientPort` (nil: `nats.bind_address`'s).
        case writeConfiguration(clientPort: Int?)
        /// Read the ports file of `pid`; answer with `portsFile`.
        case readPortsFile(pid: Int32)
        /// The server listens: point the node's clients at `clientPort`, set JetStream up, and tell the
        /// supervisor's machine it is ready.
        case serverReady(pid: Int32, clientPort: Int, monitoring: Address?)
        /// Start `GET EmbeddedServerProbe.path` at `address` for the server `pid`; answer with `probeFinished`.
        case startProbe(pid: Int32, address: Address)
        /// Start `GET EmbeddedServerProbe.metaCurrencyPath` at `address` for the server `pid`; answer with
        /// `metaCurrencyChecked`.
        case checkMetaCurrency(pid: Int32, address: Address)
        /// Drop the probe in flight: no answer is waited for any more (it took too long, or its server is gone).
        case dropProbe
        /// The server is alive: a life sign for the supervisor's machine.
        case lifeSign
        /// Measure the free bytes under `place`; answer with `freeSpace`.
        case measureFreeSpace(DiskSpaceWatch.Place)
        /// Measure the free bytes of the JetStream store's filesystem; answer with `storeSpace`.
        case measureStoreSpace(StoreCheck)
        case report(Report)
    }

    public enum Report: Equatable, Sendable {
        /// The ready server's ports file names no monitoring port (`http` turned off in `nats.server_config`?):
        /// its liveness is not probed, and a wedged server is not restarted.
        case notProbed
        /// The server answers its probe again after a problem.
        case answersAgain
        /// The server says JetStream is disabled on it (nats-server disables it when its store runs out of
        /// space, and never enables it again).
        case jetStreamDisabled
        /// The answer to the probe is not HTTP.
        case malformedAnswer(reason: String)
        /// The probe could not be sent or read.
        case probeFailed(address: Address, reason: String)
        /// The probe went unanswered for `timeout` seconds (wedged?).
        case unanswered(timeout: Double)
        /// The JetStream store's filesystem, measured for `check`; `full`: below `fullBelow`.
        case storeSpace(StoreCheck, path: String, freeBytes: UInt64, full: Bool)
        /// A watched filesystem ran full, or has space again.
        case disk(DiskSpaceWatch.Report)
        /// The node's first server listens but is not current with the JetStream meta leader yet: the node is not
        /// ready. Said at the first answer and whenever the reason changes.
        case waitingForMetaLeader(reason: String)
        /// It is current now, `waitedSeconds` after it listened.
        case metaCurrent(waitedSeconds: Double)
    }

    /// The node's first server, listening, until it is current with the meta leader.
    struct CatchUp: Equatable {
        var pid: Int32
        var clientPort: Int
        var monitoring: Address
        var since: Double
        var nextCheck: Double
        var inFlightSince: Double?
        var said: String?
    }

    enum Server {
        case none
        /// Started; its ports file is read at `nextRead` until it names the client port.
        case starting(pid: Int32, nextRead: Double)
        /// Listening; probed when `monitoring` is known.
        /// Listening, not current with the meta leader yet (first server in a cluster only).
        case catchingUp(CatchUp)
        /// Listening; probed when `monitoring` is known.
        case ready(pid: Int32, monitoring: Address?, probe: EmbeddedServerProbe)
    }

    /// Seconds between meta-currency checks of a catching-up server.
    public static let metaCheckInterval = 0.5
    /// Seconds after which an unanswered meta-currency check is abandoned (and another one sent).
    public static let metaCheckTimeout = 2.0

    /// Seconds between reads of a starting server's ports file.
    public static let portsFileInterval = 0.02

    /// The client port every restart listens on: the one the first ready server got.
    public private(set) var pinnedClientPort: Int?
    /// A server was ready (the workers started): later ones do not wait for the meta leader.
    private(set) var hadReadyServer = false
    /// The same start failure of the node's first servers, in a row (`startFailed`).
    private var failedStarts: [EmbeddedServerStartFailure] = []
    var server: Server = .none
    /// The probe problem last reported (each one once in a row).
    var probeProblem: Report?
    var diskWatch: DiskSpaceWatch
    let storeDirectory: String
    let heartbeatTimeout: Double
    /// The server is one of a JetStream cluster: the first one is ready once current with the meta leader.
    let awaitsMetaCurrency: Bool

    /// - Parameters:
    ///   - storeDirectory: the embedded JetStream store (measured when the server wedges or is killed).
    ///   - heartbeatTimeout: `[workers.nats] heartbeat_timeout` in seconds (the probe's cadence and timeout).
    ///   - places: the filesystems to watch (`watchedPlaces`).
    ///   - awaitsMetaCurrency: the server has cluster routes (`-cluster-addr`/`-cluster-peers`).
    public init(storeDirectory: String, heartbeatTimeout: Double, places: [DiskSpaceWatch.Place], now: Double, awaitsMetaCurrency: Bool = false) {
        self.storeDirectory = storeDirectory
        self.heartbeatTimeout = heartbeatTimeout
        self.awaitsMetaCurrency = awaitsMetaCurrency
        diskWatch = DiskSpaceWatch(places: places, now: now)
    }

    /// The filesystems to watch: the database's directory, and the JetStream store's (`storeDirectory`, nil
    /// with an external NATS) as one place when both are on one filesystem, so a full disk is said once.
    public static func watchedPlaces(databaseDirectory: String, storeDirectory: String?, sameFileSystem: Bool) -> [DiskSpaceWatch.Place] {
        let database = DiskSpaceWatch.Place(.database, path: databaseDirectory)
        guard let storeDirectory else { return [database] }
        if sameFileSystem { return [DiskSpaceWatch.Place(.databaseAndStore, path: databaseDirectory)] }
        return [database, DiskSpaceWatch.Place(.store, path: storeDirectory)]
    }

    /// Where to probe a server whose ports file names `monitoring`: an IPv4 address (the probe speaks IPv4),
    /// loopback when the server listens there (on every interface included), else the first one named (an
    /// operator's `http: "10.0.0.5:8222"` in `nats.server_config`); nil when none is usable.
    public static func probeAddress(_ monitoring: [Address]) -> Address? {
        let usable = monitoring.filter { !$0.host.contains(":") && (1...65535).contains($0.port) }
        guard let chosen = usable.first(where: { $0.host == "127.0.0.1" }) ?? usable.first else { return nil }
        return chosen.host.isEmpty || chosen.host == "0.0.0.0" ? Address(host: "127.0.0.1", port: chosen.port) : chosen
    }

    /// When `tick` has work next, for the loop's poll timeout (infinity: none).
    public var nextDeadline: Double {
        let disks = diskWatch.places.isEmpty ? Double.infinity : diskWatch.nextAt
        switch server {
        case .starting(_, let nextRead): return min(nextRead, disks)
        case .catchingUp(let catchUp): return min(catchUp.inFlightSince.map { $0 + Self.metaCheckTimeout } ?? catchUp.nextCheck, disks)
        case .ready(_, .some, let probe): return min(probe.nextDeadline, disks)
        case .ready, .none: return disks
        }
    }

    public mutating func handle(_ event: Event, now: Double) -> [Action] {
        switch event {
        case .starting:
            return [.writeConfiguration(clientPort: pinnedClientPort)]
        case .spawned(let pid):
            server = .starting(pid: pid, nextRead: now)
            return []
        case .exited(let pid):
            return serverGone(pid)
        case .portsFile(let pid, let clientPort, let monitoring):
            return portsFile(pid: pid, clientPort: clientPort, monitoring: Self.probeAddress(monitoring), now: now)
        case .probeFinished(let pid, let result):
            return probeFinished(pid: pid, result, now: now)
        case .metaCurrencyChecked(let pid, let result):
            return metaCurrencyChecked(pid: pid, result, now: now)
        case .killing(let pid):
            guard case .ready(pid, _, _) = server else { return [] }
            return [.measureStoreSpace(.killing)]
        case .freeSpace(let place, let freeBytes):
            return diskWatch.measured(place, freeBytes: freeBytes).map { [Action.report(.disk($0))] } ?? []
        case .storeSpace(let check, let freeBytes):
            return [.report(.storeSpace(check, path: storeDirectory, freeBytes: freeBytes, full: freeBytes < diskWatch.fullBelow))]
        case .tick:
            return tick(now: now)
        }
    }

    private mutating func tick(now: Double) -> [Action] {
        var actions: [Action] = []
        switch server {
        case .none:
            break
        case .starting(let pid, let nextRead):
            if now >= nextRead {
                server = .starting(pid: pid, nextRead: now + Self.portsFileInterval)
                actions.append(.readPortsFile(pid: pid))
            }
        case .catchingUp:
            actions += metaCheckDue(now: now)
        case .ready(_, nil, _):
            // Not probed: the process being alive is all there is to know.
            actions.append(.lifeSign)
        case .ready:
            actions += probeDue(now: now)
        }
        if !diskWatch.places.isEmpty, diskWatch.due(now: now) { actions += diskWatch.places.map { .measureFreeSpace($0) } }
        return actions
    }

    /// How many of the node's first servers in a row must fail to start the same recognised way before the
    /// start is given up as a configuration error: a port another process held for a moment (a client's
    /// connection, a test's probe) is free again at the next attempt.
    public static let startAttempts = 3

    /// Called as the server `pid` ends: why it could not start, when no restart can help — the same
    /// `EmbeddedServerStartFailure` recognised in `lastWords` (its last fatal line) for `attempts` servers in a
    /// row, none of them ever ready. Nil otherwise (restarted as a crash). Once a server was ready, the node
    /// runs and a failing restart is a crash (the port it keeps may be free again). The supervisor passes
    /// fewer attempts than `startAttempts` when `[workers.nats] restart_intensity` allows fewer restarts, so
    /// the start is given up as a configuration error before the restart budget runs out.
    public mutating func startFailed(pid: Int32, lastWords: String?, attempts: Int = startAttempts) -> EmbeddedServerStartFailure? {
        guard !hadReadyServer else { return nil }
        let ending: Bool
        switch server {
        case .starting(pid, _): ending = true
        case .catchingUp(let catchUp): ending = catchUp.pid == pid
        default: ending = false
        }
        guard ending else { return nil }  // another process (or an earlier server) ended: the count stands
        guard let failure = lastWords.flatMap(EmbeddedServerStartFailure.init(lastWords:)) else {
            failedStarts = []
            return nil
        }
        failedStarts = failedStarts.last == failure ? failedStarts + [failure] : [failure]
        return failedStarts.count >= max(1, attempts) ? failure : nil
    }

    private mutating func serverGone(_ pid: Int32) -> [Action] {
        switch server {
        case .starting(pid, _):
            server = .none
            return []
        case .catchingUp(let catchUp) where catchUp.pid == pid:
            server = .none
            return catchUp.inFlightSince != nil ? [.dropProbe] : []
        case .ready(pid, let monitoring, let probe):
            server = .none
            return monitoring != nil && probe.inFlightSince != nil ? [.dropProbe] : []
        default:
            return []
        }
    }

    private mutating func portsFile(pid: Int32, clientPort: Int?, monitoring: Address?, now: Double) -> [Action] {
        // Untrusted bytes: a port outside 1…65535 counts as not written yet.
        guard case .starting(pid, _) = server, let clientPort, (1...65535).contains(clientPort) else { return [] }
        pinnedClientPort = clientPort
        if awaitsMetaCurrency, !hadReadyServer, let monitoring {
            server = .catchingUp(CatchUp(pid: pid, clientPort: clientPort, monitoring: monitoring, since: now, nextCheck: now))
            return metaCheckDue(now: now)
        }
        return listening(pid: pid, clientPort: clientPort, monitoring: monitoring, now: now)
    }

    /// The server is ready: probed from now on.
    private mutating func listening(pid: Int32, clientPort: Int, monitoring: Address?, now: Double) -> [Action] {
        hadReadyServer = true
        server = .ready(pid: pid, monitoring: monitoring, probe: EmbeddedServerProbe(heartbeatTimeout: heartbeatTimeout, now: now))
        var actions: [Action] = monitoring == nil ? [.report(.notProbed)] : []
        actions.append(.serverReady(pid: pid, clientPort: clientPort, monitoring: monitoring))
        return actions + probeDue(now: now)
    }

    /// Sends a meta-currency check when one is due; abandons one unanswered for `metaCheckTimeout` first.
    private mutating func metaCheckDue(now: Double) -> [Action] {
        guard case .catchingUp(var catchUp) = server else { return [] }
        if let since = catchUp.inFlightSince, now - since < Self.metaCheckTimeout { return [] }
        if catchUp.inFlightSince == nil, now < catchUp.nextCheck { return [] }
        let abandon: [Action] = catchUp.inFlightSince == nil ? [] : [.dropProbe]
        catchUp.inFlightSince = now
        server = .catchingUp(catchUp)
        return abandon + [.checkMetaCurrency(pid: catchUp.pid, address: catchUp.monitoring)]
    }

    private mutating func metaCurrencyChecked(pid: Int32, _ result: ProbeResult, now: Double) -> [Action] {
        guard case .catchingUp(var catchUp) = server, catchUp.pid == pid, catchUp.inFlightSince != nil else { return [] }
        let verdict: EmbeddedServerProbe.MetaCurrency
        switch result {
        case .answered(let response): verdict = EmbeddedServerProbe.metaCurrency(response: response)
        case .failed(let reason): verdict = .behind(String(reason.prefix(200)))
        }
        switch verdict {
        case .current:
            return [.report(.metaCurrent(waitedSeconds: now - catchUp.since))]
                + listening(pid: pid, clientPort: catchUp.clientPort, monitoring: catchUp.monitoring, now: now)
        case .behind(let reason):
            catchUp.inFlightSince = nil
            catchUp.nextCheck = now + Self.metaCheckInterval
            let say = catchUp.said != reason
            catchUp.said = reason
            server = .catchingUp(catchUp)
            return say ? [.report(.waitingForMetaLeader(reason: reason))] : []
        }
    }

    private mutating func probeFinished(pid: Int32, _ result: ProbeResult, now: Double) -> [Action] {
        guard case .ready(pid, let monitoring?, var probe) = server, probe.inFlightSince != nil else { return [] }
        probe.finished()
        server = .ready(pid: pid, monitoring: monitoring, probe: probe)
        var actions: [Action]
        switch result {
        case .answered(let response):
            switch EmbeddedServerProbe.verdict(response: response) {
            case .alive:
                actions = probeProblem == nil ? [] : [.report(.answersAgain)]
                probeProblem = nil
                actions.append(.lifeSign)
            case .jetStreamDisabled:
                actions = problem(.jetStreamDisabled)
            case .malformed(let reason):
                actions = problem(.malformedAnswer(reason: reason))
            }
        case .failed(let reason):
            actions = problem(.probeFailed(address: monitoring, reason: reason))
        }
        return actions + probeDue(now: now)
    }

    /// Starts a probe when one is due; abandons one unanswered for too long first.
    private mutating func probeDue(now: Double) -> [Action] {
        guard case .ready(let pid, let monitoring?, var probe) = server else { return [] }
        let (start, abandon) = probe.due(now: now)
        server = .ready(pid: pid, monitoring: monitoring, probe: probe)
        var actions: [Action] = []
        if abandon { actions += [Action.dropProbe] + problem(.unanswered(timeout: probe.timeout)) + [Action.measureStoreSpace(.unanswered)] }
        if start { actions.append(.startProbe(pid: pid, address: monitoring)) }
        return actions
    }

    private mutating func problem(_ report: Report) -> [Action] {
        guard report != probeProblem else { return [] }
        probeProblem = report
        return [.report(report)]
    }
}
