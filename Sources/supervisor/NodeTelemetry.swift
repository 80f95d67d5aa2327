import Foundation
import HarmonyConfig
import IPC
import Logging
import NATSClient
import Operability
import Signals
import Supervision

#if canImport(Glibc)
import Logs
import Glibc
#endif

/// The supervisor's side of /metrics, /health, `-status` and `sleep_timeout`. The poll loop feeds it
/// (heartbeat counters, histogram samples, a tick) and asks it for the status report; the HTTP thread
/// reads only the metrics registry and the newest `NodeView`, so a slow client never touches the loop.
final class NodeTelemetry {
    private let config: Configuration
    private let metrics: NodeMetrics
    private var reports = WorkerReports()
    /// The wait each worker said last (`NodeView.Worker.isWait`), until it is ready or says something else.
    private var waits: [WorkerRole: String] = [:]
    private var stalls = ShardStallWatch()
    /// Lines about catching up with the streams (a node that was down, or restored an older snapshot).
    private var catchUp = CatchUpProgress()
    private let logger = Logger(label: "supervisor")
    /// Per stream: the stall the last tick saw (`stalls`), read by every view.
    private var stalledSeconds: [String: Double] = [:]
    private var sleepTimer: SleepTimer
    private let startedAt: Double
    private let startedAtWall = Date()
    private var firstSeen: [Int32: Double] = [:]
    private var samples: [Int32: ProcessSample] = [:]
    private var sampledAt = -Double.infinity
    /// The newest view, shared with the HTTP thread.
    private let current = Latest<NodeView>()
    private let server: HTTPServer?
    /// The URLs the broker connects to (the embedded server's once it listens).
    var natsURLs: [String]
    /// The embedded server's monitoring endpoint (`http://host:port`), once known.
    var natsMonitoringURL: String?

    init(config: Configuration, now: Double) throws {
        self.config = config
        startedAt = now
        natsURLs = config.nats.urls
        metrics = NodeMetrics(namespace: config.prometheus.namespace, subsystem: config.prometheus.subsystem, nodeID: config.nodeID)
        sleepTimer = SleepTimer(timeout: Double(config.sleepTimeout) / 1000, now: now)
        var endpoints: [(bind: String, handler: HTTPServer.Handler)] = []
        if config.prometheus.enable {
            let registry = metrics.registry
            endpoints.append(
                (
                    config.prometheus.bind,
                    { request in
                        // HarmonyLite served the metrics on every path of prometheus.bind.
                        guard request.method == "GET" || request.method == "HEAD" else { return .text(405, "use GET") }
                        return HTTPResponse(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: registry.emitToBuffer())
                    }
                ))
        }
        if config.healthCheck.enable {
            let (path, detailed, database) = (config.healthCheck.path, config.healthCheck.detailed, config.dbPath)
            let view = current
            let health: HTTPServer.Handler = { request in
                guard request.path == path else { return .text(404, "not found: the health check is at \(path)") }
                guard let snapshot = view.get else { return .text(503, "starting") }
                return HealthReport(view: snapshot, database: DatabaseProbe.check(database)).response(detailed: detailed)
            }
            if config.prometheus.enable && HostPort(parsing: config.healthCheck.bind) == HostPort(parsing: config.prometheus.bind) {
                // One port for both: the health path there, the metrics on every other path.
                let metricsHandler = endpoints[0].handler
                endpoints[0].handler = { request in request.path == path ? health(request) : metricsHandler(request) }
            } else {
                endpoints.append((config.healthCheck.bind, health))
            }
        }
        do {
            server = endpoints.isEmpty ? nil : try HTTPServer(endpoints: endpoints)
        } catch {
            throw SupervisorError(.configuration, "\(error) (prometheus.bind / health_check.bind)")
        }
        server?.start()
    }

    /// Where the HTTP endpoints listen, for the start log line.
    var listening: String? {
        guard let server else { return nil }
        return server.ports.map(String.init).joined(separator: ", ")
    }

    func stop() { server?.stop() }

    // MARK: fed by the loop

    /// A worker's status line: a wait is kept for `-status` and `/health`; true when it is one.
    func workerStatus(_ worker: WorkerRole, _ text: String) -> Bool {
        let wait = NodeView.Worker.isWait(text)
        waits[worker] = wait ? text : nil
        return wait
    }

    func workerReady(_ worker: WorkerRole) { waits[worker] = nil }

    func heartbeat(worker: WorkerRole, pid: Int32, counters: [ControlMessage.Counter]) {
        metrics.heartbeat(worker: worker, pid: pid, counters: counters)
        reports.heartbeat(worker: worker, pid: pid, counters: counters)
    }

    func observed(_ list: [Observations], now: Double) {
        metrics.observed(list)
        reports.observed(list, now: now)
    }

    /// Updates the view and the supervisor's own metrics; true when `sleep_timeout` says the node should
    /// stop now.
    func tick(_ machine: SupervisorStateMachine, now: Double) -> Bool {
        let children = machine.childSummaries
        for child in children where child.pid == nil { reports.forget(child.role) }
        if now - sampledAt >= 1 {
            sampledAt = now
            samples = [:]
            for child in children {
                guard let pid = child.pid else { continue }
                if firstSeen[pid] == nil { firstSeen[pid] = now }
                samples[pid] = ProcessSample.read(pid: pid)
                let sample = samples[pid]
                metrics.worker(
                    WorkerSample(
                        role: child.role, up: child.state == .running, pid: pid, restarts: child.restarts,
                        reloads: child.reloads, residentBytes: sample?.residentBytes, cpuSeconds: sample?.cpuSeconds))
            }
            for child in children where child.pid == nil {
                metrics.worker(
                    WorkerSample(role: child.role, up: false, pid: nil, restarts: child.restarts, reloads: child.reloads, residentBytes: nil, cpuSeconds: nil))
            }
            let live = Set(children.compactMap(\.pid))
            firstSeen = firstSeen.filter { live.contains($0.key) }
            metrics.uptime(seconds: now - startedAt)
        }
        let heads = reports.labelled(.broker, .streamLastSequence), cursors = reports.labelled(.applier, .streamCursor)
        for name in config.changeStreamNames {
            let stall =
                config.replicate && machine.isReady
                ? stalls.observe(stream: name, head: heads[name].map { UInt64(max(0, $0)) }, cursor: cursors[name].map { UInt64(max(0, $0)) }, now: now) : nil
            stalledSeconds[name] = stall
            if config.replicate,
                let report = catchUp.observe(
                    stream: name, head: heads[name].map { UInt64(max(0, $0)) },
                    cursor: cursors[name].map { UInt64(max(0, $0)) }, now: now)
            {
                logger.info("\(report.message)", metadata: report.metadata.mapValues { .string($0) })
            }
        }
        let view = makeView(children, machine: machine, now: now)
        metrics.snapshotAge(seconds: view.snapshot.ageSeconds)
        current.set(view)
        guard machine.isReady else { return false }
        return sleepTimer.observe(published: reports.total(.publishedRows), applied: reports.total(.appliedEvents), now: now)
    }

    /// `-status -json`'s answer.
    func statusJSON(_ machine: SupervisorStateMachine, now: Double) -> String {
        makeView(machine.childSummaries, machine: machine, now: now).json()
    }

    var sleepTimeoutSeconds: Double { sleepTimer.timeout }

    // MARK: the view

    private func makeView(_ children: [SupervisorStateMachine.ChildSummary], machine: SupervisorStateMachine, now: Double) -> NodeView {
        let workers = children.map { child in
            let sample = child.pid.flatMap { samples[$0] }
            return NodeView.Worker(
                name: child.role, state: child.state, pid: child.pid, restarts: child.restarts,
                uptimeSeconds: child.pid.flatMap { firstSeen[$0] }.map { now - $0 },
                residentBytes: sample?.residentBytes, cpuSeconds: sample?.cpuSeconds,
                waitingFor: waits[child.role]
                    ?? NodeView.Worker.waitingFor(databaseWaitMilliseconds: reports.value(child.role, .databaseWait)))
        }
        let heads = reports.labelled(.broker, .streamLastSequence)
        let cursors = reports.labelled(.applier, .streamCursor)
        let recentLag = reports.recentLag(now: now)
        let streams = (1...max(1, config.replicationLog.shards)).map { shard -> NodeView.Stream in
            let name = config.shardStreamName(UInt64(shard))
            let head = heads[name].map { UInt64(max(0, $0)) }
            let cursor = cursors[name].map { UInt64(max(0, $0)) }
            var behind: UInt64?
            if let head, let cursor { behind = head >= cursor ? head - cursor : 0 }
            return NodeView.Stream(
                name: name, lastSequence: head, cursor: cursor, behind: behind, lagSeconds: recentLag[name],
                stalledSeconds: stalledSeconds[name])
        }
        let created = reports.value(.snapshotter, .snapshotCreatedUnixMs).flatMap { $0 > 0 ? $0 : nil }
        let nowWall = Date().timeIntervalSince1970
        let snapshot = NodeView.Snapshot(
            enabled: config.snapshot.enabled,
            leaseHeldHere: reports.value(.snapshotter, .snapshotLeader).map { $0 > 0 },
            createdUnixMs: created, ageSeconds: created.map { max(0, nowWall - Double($0) / 1000) },
            sizeBytes: reports.value(.snapshotter, .snapshotSizeBytes).flatMap { $0 > 0 ? $0 : nil },
            durationSeconds: reports.value(.snapshotter, .snapshotJobMs).flatMap { $0 > 0 ? Double($0) / 1000 : nil },
            saved: reports.total(.snapshotsSaved), restored: reports.total(.snapshotsRestored)
        )
        var view = NodeView(
            nodeId: config.nodeID, version: HarmonyLiteVersion.number, phase: machine.isReady ? "running" : machine.hasExited ? "stopped" : "starting",
            startedAtUnixMs: Int64(startedAtWall.timeIntervalSince1970 * 1000), uptimeSeconds: now - startedAt, workers: workers,
            natsConnected: machine.pid(of: .broker) != nil && reports.value(.broker, .natsConnected) == 1,
            natsServers: natsURLs.map(URLRedaction.redact), streams: streams,
            tablesTracked: reports.value(.capturer, .tablesTracked), pendingPublish: reports.value(.capturer, .pendingPublish),
            parkedMessages: reports.value(.applier, .parkedMessages),
            publishedRows: reports.total(.publishedRows), appliedRows: reports.total(.appliedEvents), conflicts: reports.total(.uniqueConflicts),
            publishRetries: reports.total(.publishFailures),
            lastPublishedUnixMs: reports.value(.capturer, .lastPublishedUnixMs).flatMap { $0 > 0 ? $0 : nil },
            lastAppliedUnixMs: reports.value(.applier, .lastAppliedUnixMs).flatMap { $0 > 0 ? $0 : nil },
            snapshot: snapshot, sleepTimeoutSeconds: sleepTimer.remaining(now: now)
        )
        view.natsMonitoring = natsMonitoringURL
        view.clock = NodeView.Clock(
            maxOffsetMs: Int64(config.maxClockOffset), futureStamps: reports.total(.futureStamps),
            clampedLocalStamps: reports.total(.clampedLocalStamps),
            aheadOrigin: reports.value(.applier, .clockAheadOrigin).map { UInt64(max(0, $0)) },
            aheadMs: reports.value(.applier, .clockAheadOrigin) == nil ? nil : reports.value(.applier, .clockAheadMs)
        )
        return view
    }
}
