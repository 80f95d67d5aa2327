import Foundation
import HarmonyConfig
import Operability
import SQLiteKit
import TestSupport
import Testing

@testable import IPC

@Suite struct CounterBaselinesTests {
    @Test func totalsBecomeIncrementsAndARestartCountsFromZero() {
        var baselines = CounterBaselines()
        #expect(baselines.increment(worker: "applier", pid: 10, name: "applied_events", total: 5) == 5)
        #expect(baselines.increment(worker: "applier", pid: 10, name: "applied_events", total: 8) == 3)
        #expect(baselines.increment(worker: "applier", pid: 10, name: "applied_events", total: 8) == 0)
        // A new pid: its totals start at 0 again, and all of its first report is new.
        #expect(baselines.increment(worker: "applier", pid: 11, name: "applied_events", total: 2) == 2)
        // A total that went down without a restart never makes the counter go down.
        #expect(baselines.increment(worker: "applier", pid: 11, name: "applied_events", total: 1) == 0)
        #expect(baselines.increment(worker: "applier", pid: 11, name: "applied_events", total: 4) == 3)
    }
}

@Suite struct NodeMetricsTests {
    /// The value of the series whose line starts with `prefix` (name and labels) in the exposition text.
    static func value(_ text: String, _ prefix: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(prefix + " ") {
            return Double(line.split(separator: " ").last!)
        }
        return nil
    }

    @Test func harmonyLitesFiveExistFromTheStartUnderNamespaceAndSubsystem() {
        let metrics = NodeMetrics(namespace: "harmonylite", subsystem: "replication", nodeID: 7)
        let text = metrics.registry.emitToString()
        for name in ["published_total", "published", "pending_publish", "schema_mismatch_paused"] {
            #expect(text.contains("# TYPE harmonylite_replication_\(name) "), "\(name) in\n\(text)")
        }
        #expect(text.contains("harmonylite_replication_count_changes_bucket{node_id=\"7\",le=\"0.0001\"} 0"), "\(text)")
        #expect(text.contains("harmonylite_replication_scan_changes_count{node_id=\"7\"} 0"), "\(text)")
        // Without a subsystem the name has no empty part.
        #expect(NodeMetrics(namespace: "harmonylite", subsystem: "", nodeID: 1).registry.emitToString().contains("harmonylite_published{node_id=\"1\"} 0"))
    }

    @Test func heartbeatsMoveCountersAcrossRestartsAndSetGauges() {
        let metrics = NodeMetrics(namespace: "hl", subsystem: "", nodeID: 2)
        metrics.heartbeat(worker: .capturer, pid: 100, counters: [.init(.publishedRows, 10), .init(.pendingPublish, 4)])
        metrics.heartbeat(worker: .capturer, pid: 100, counters: [.init(.publishedRows, 15), .init(.pendingPublish, 0)])
        metrics.heartbeat(worker: .capturer, pid: 101, counters: [.init(.publishedRows, 3)])
        metrics.heartbeat(
            worker: .applier, pid: 200, counters: [.init(.streamCursor, label: "s-1", 42), .init(.parkedWaiting, 2), .init(name: "unknown_name", 9)])
        metrics.heartbeat(worker: .broker, pid: 300, counters: [.init(.streamLastSequence, label: "s-1", 50), .init(.natsConnected, 1)])
        let text = metrics.registry.emitToString()
        #expect(Self.value(text, "hl_published_total{node_id=\"2\"}") == 18, "\(text)")
        // HarmonyLite's name, kept as an alias (a gauge: promtool wants counters to end in _total).
        #expect(Self.value(text, "hl_published{node_id=\"2\"}") == 18, "\(text)")
        #expect(text.contains("# TYPE hl_published gauge") && text.contains("# TYPE hl_published_total counter"), "\(text)")
        #expect(Self.value(text, "hl_pending_publish{node_id=\"2\"}") == 0)
        #expect(Self.value(text, "hl_stream_cursor{node_id=\"2\",stream=\"s-1\"}") == 42)
        #expect(Self.value(text, "hl_stream_last_sequence{node_id=\"2\",stream=\"s-1\"}") == 50)
        #expect(Self.value(text, "hl_schema_mismatch_paused{node_id=\"2\"}") == 1)
        #expect(Self.value(text, "hl_nats_connected{node_id=\"2\"}") == 1)
        #expect(!text.contains("unknown_name"))
    }

    @Test func observationsAddExactCountsBucketsAndSums() {
        let metrics = NodeMetrics(namespace: "hl", subsystem: "", nodeID: 1)
        var accumulator = ObservationAccumulator()
        for value in [0.003, 0.004, 0.2, 7.0, 1000.0] { accumulator.record(.applyLag, value, label: "s-2") }
        let taken = accumulator.take()
        #expect(accumulator.isEmpty)
        // Through the wire format, as a worker sends them.
        let decoded = try? ControlMessage(frame: ControlMessage.observations(taken).frame)
        #expect(decoded == .observations(taken))
        metrics.observed(taken)
        let text = metrics.registry.emitToString()
        #expect(Self.value(text, "hl_apply_lag_seconds_bucket{node_id=\"1\",stream=\"s-2\",le=\"0.005\"}") == 2, "\(text)")
        #expect(Self.value(text, "hl_apply_lag_seconds_bucket{node_id=\"1\",stream=\"s-2\",le=\"0.25\"}") == 3)
        #expect(Self.value(text, "hl_apply_lag_seconds_bucket{node_id=\"1\",stream=\"s-2\",le=\"10.0\"}") == 4)
        #expect(Self.value(text, "hl_apply_lag_seconds_bucket{node_id=\"1\",stream=\"s-2\",le=\"+Inf\"}") == 5)
        #expect(Self.value(text, "hl_apply_lag_seconds_count{node_id=\"1\",stream=\"s-2\"}") == 5)
        let sum = Self.value(text, "hl_apply_lag_seconds_sum{node_id=\"1\",stream=\"s-2\"}") ?? 0
        #expect(abs(sum - 1007.207) < 1e-6, "\(sum)")
    }

    /// The lag `-status` shows is that of changes applied lately: once nothing arrived for `lagFreshness`
    /// seconds there is none in flight, and the last one's lag is not shown as current.
    @Test func theLagShownIsOnlyThatOfRecentChanges() {
        var reports = WorkerReports()
        var accumulator = ObservationAccumulator()
        accumulator.record(.applyLag, 4.0, label: "s-1")
        accumulator.record(.applyLag, 2.0, label: "s-1")
        reports.observed(accumulator.take(), now: 100)
        #expect(reports.recentLag(now: 100) == ["s-1": 3.0])
        #expect(reports.recentLag(now: 100 + WorkerReports.lagFreshness) == ["s-1": 3.0])
        #expect(reports.recentLag(now: 100.5 + WorkerReports.lagFreshness).isEmpty)
        accumulator.record(.applyLag, 0.25, label: "s-1")
        reports.observed(accumulator.take(), now: 200)
        #expect(reports.recentLag(now: 201) == ["s-1": 0.25])
    }

    @Test func workersUpRestartsMemoryAndCPU() {
        let metrics = NodeMetrics(namespace: "hl", subsystem: "", nodeID: 1)
        metrics.worker(WorkerSample(role: .broker, up: true, pid: 5, restarts: 0, residentBytes: 1000, cpuSeconds: 1.5))
        metrics.worker(WorkerSample(role: .broker, up: false, pid: nil, restarts: 1, residentBytes: nil, cpuSeconds: nil))
        metrics.worker(WorkerSample(role: .broker, up: true, pid: 6, restarts: 1, residentBytes: 2000, cpuSeconds: 0.25))
        metrics.worker(WorkerSample(role: .broker, up: true, pid: 6, restarts: 1, reloads: 2, residentBytes: 2000, cpuSeconds: 0.25))
        let text = metrics.registry.emitToString()
        #expect(Self.value(text, "hl_worker_up{node_id=\"1\",worker=\"broker\"}") == 1)
        #expect(Self.value(text, "hl_worker_restarts_total{node_id=\"1\",worker=\"broker\"}") == 1)
        #expect(Self.value(text, "hl_worker_reloads_total{node_id=\"1\",worker=\"broker\"}") == 2)
        #expect(Self.value(text, "hl_worker_resident_memory_bytes{node_id=\"1\",worker=\"broker\"}") == 2000)
        #expect(Self.value(text, "hl_worker_cpu_seconds_total{node_id=\"1\",worker=\"broker\"}") == 1.75)
    }
}

@Suite struct HTTPRequestTests {
    @Test func parsesOnlyACompleteBoundedRequestLine() {
        #expect(HTTPRequest.parse(Array("GET /metrics HTTP/1.1\r\nHost: x\r\n".utf8)) == .incomplete)
        #expect(HTTPRequest.parse(Array("GET /health?x=1 HTTP/1.1\r\nHost: x\r\n\r\n".utf8)) == .request(HTTPRequest(method: "GET", path: "/health")))
        #expect(HTTPRequest.parse(Array("GET /metrics HTTP/1.0\n\n".utf8)) == .request(HTTPRequest(method: "GET", path: "/metrics")))
        guard case .bad(400, _) = HTTPRequest.parse(Array("HELLO\r\n\r\n".utf8)) else { Issue.record("a malformed line is a 400"); return }
        guard case .bad(400, _) = HTTPRequest.parse([0xff, 0xfe, 0x20, 0x2f, 13, 10, 13, 10]) else { Issue.record("bad UTF-8 is a 400"); return }
        let huge = Array(("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 9000)).utf8)
        guard case .bad(431, _) = HTTPRequest.parse(huge) else { Issue.record("an endless head is refused"); return }
    }

    @Test func responsesSayTheirTypeLengthAndClose() {
        let text = String(decoding: HTTPResponse(status: 503, contentType: "application/json", body: Array("{}".utf8)).serialized(), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))
        #expect(text.contains("Content-Type: application/json\r\n") && text.contains("Content-Length: 2\r\n") && text.contains("Connection: close\r\n"))
        #expect(text.hasSuffix("\r\n\r\n{}"))
    }
}

@Suite struct SleepTimerTests {
    @Test func firesOnlyAfterTheTimeoutWithoutChange() {
        var timer = SleepTimer(timeout: 10, now: 0)
        var fired: [Bool] = []
        fired.append(timer.observe(published: 0, applied: 0, now: 5))
        fired.append(timer.observe(published: 1, applied: 0, now: 9))
        fired.append(timer.observe(published: 1, applied: 0, now: 18))
        fired.append(timer.observe(published: 1, applied: 3, now: 18.5))
        #expect(timer.remaining(now: 20) == 8.5)
        fired.append(timer.observe(published: 1, applied: 3, now: 28.5))
        #expect(fired == [false, false, false, false, true])
        var off = SleepTimer(timeout: 0, now: 0)
        let offFired = off.observe(published: 0, applied: 0, now: 1e9)
        #expect(!offFired)
        #expect(off.remaining(now: 5) == nil)
    }
}

@Suite struct ReportTests {
    static func view(natsConnected: Bool = true, brokerState: WorkerState = .running) -> NodeView {
        NodeView(
            nodeId: 3, version: "0.1.0", phase: "running", startedAtUnixMs: 1_700_000_000_000, uptimeSeconds: 12.5,
            workers: [.init(name: .broker, state: brokerState, pid: 9, restarts: 2, uptimeSeconds: 3, residentBytes: 4 << 20, cpuSeconds: 0.5)],
            natsConnected: natsConnected, natsServers: ["nats://127.0.0.1:4222"],
            streams: [.init(name: "harmonylite-changes-1", lastSequence: 10, cursor: 7, behind: 3, lagSeconds: 0.02)],
            tablesTracked: 2, pendingPublish: 5, parkedMessages: 1, publishedRows: 100, appliedRows: 50, conflicts: 1, publishRetries: 0,
            lastPublishedUnixMs: 1_700_000_001_234, lastAppliedUnixMs: nil,
            snapshot: .init(
                enabled: true, leaseHeldHere: true, createdUnixMs: 1_700_000_000_000, ageSeconds: 60, sizeBytes: 4096, durationSeconds: 0.2,
                saved: 1, restored: 0),
            sleepTimeoutSeconds: nil
        )
    }

    @Test func healthHasHarmonyLitesFieldsAndTheHonestRule() throws {
        let healthy = HealthReport(view: Self.view(), database: .init(connected: true, cdcInstalled: true))
        let response = healthy.response(detailed: true)
        #expect(response.status == 200 && response.contentType == "application/json")
        let body = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        #expect(body["status"] as? String == "healthy")
        #expect(body["node_id"] as? Int == 3)
        #expect(body["uptime_seconds"] as? Int == 12)
        #expect(body["tables_tracked"] as? Int == 2)
        #expect(body["last_published_event_timestamp"] as? String == "2023-11-14T22:13:21.234Z")
        // An unknown time is left out, not a zero time.
        #expect(body["last_replicated_event_timestamp"] == nil)
        for key in ["db_connected", "nats_connected", "cdc_installed", "version", "workers", "streams"] { #expect(body[key] != nil, "\(key)") }

        #expect(
            HealthReport(view: Self.view(natsConnected: false), database: .init(connected: true, cdcInstalled: true)).response(detailed: true).status == 503)
        #expect(
            HealthReport(view: Self.view(brokerState: .restarting), database: .init(connected: true, cdcInstalled: true)).response(detailed: false).status
                == 503)
        #expect(HealthReport(view: Self.view(), database: .init(connected: true, cdcInstalled: false)).isHealthy == false)
        let down = HealthReport(view: Self.view(), database: .init(connected: false, cdcInstalled: false, error: "gone")).body
        #expect(down.contains("\"status\":\"unhealthy\"") && down.contains("database: gone"), "\(down)")
    }

    /// A worker waiting for the database write lock (its heartbeat's `database_wait_ms`) is shown in
    /// `-status` (text and JSON) and in `/health`'s problems, and the node stays healthy: it waits, it works.
    @Test func aWorkerWaitingForTheWriteLockIsShownAndStillHealthy() throws {
        #expect(NodeView.Worker.waitingFor(databaseWaitMilliseconds: nil) == nil)
        #expect(NodeView.Worker.waitingFor(databaseWaitMilliseconds: 0) == nil)
        let waiting = try #require(NodeView.Worker.waitingFor(databaseWaitMilliseconds: 35_400))
        #expect(waiting == "waiting for the database write lock for 35 s")
        var view = Self.view()
        view.workers.append(
            .init(name: .applier, state: .running, pid: 10, restarts: 0, uptimeSeconds: 40, residentBytes: nil, cpuSeconds: nil, waitingFor: waiting))
        #expect(StatusText.render(view).contains("applier: waiting for the database write lock for 35 s"))
        #expect(view.json().contains("\"waiting_for\":\"waiting for the database write lock for 35 s\""))
        #expect(try NodeView.decode(json: view.json()) == view)
        let health = HealthReport(view: view, database: .init(connected: true, cdcInstalled: true))
        #expect(health.response(detailed: true).status == 200)
        #expect(health.body.contains("applier is waiting for the database write lock for 35 s"), "\(health.body)")
    }

    /// A stream with messages past the cursor and a cursor that does not move is reported within the
    /// threshold, in `/health` (503, a problem naming it) and in `-status`; progress or catching up clears it.
    @Test func aStalledShardIsUnhealthyAndShownInTheStatus() throws {
        var watch = ShardStallWatch(threshold: 10)
        #expect(watch.observe(stream: "s", head: 10, cursor: 7, now: 0) == nil)
        #expect(watch.observe(stream: "s", head: 12, cursor: 7, now: 9.9) == nil)
        #expect(watch.observe(stream: "s", head: 12, cursor: 7, now: 10) == 10)
        #expect(watch.observe(stream: "s", head: 12, cursor: 8, now: 11) == nil, "the cursor moved: counted again from now")
        #expect(watch.observe(stream: "s", head: 12, cursor: 8, now: 20) == nil)
        #expect(watch.observe(stream: "s", head: 12, cursor: 8, now: 21) == 10)
        #expect(watch.observe(stream: "s", head: 8, cursor: 8, now: 40) == nil, "caught up")
        #expect(watch.observe(stream: "s", head: 9, cursor: 8, now: 41) == nil)
        #expect(watch.observe(stream: "s", head: nil, cursor: 8, now: 60) == nil, "unknown head")

        var view = Self.view()
        view.streams[0].stalledSeconds = 12
        let report = HealthReport(view: view, database: .init(connected: true, cdcInstalled: true))
        #expect(report.response(detailed: false).status == 503)
        #expect(report.body.contains("harmonylite-changes-1 makes no progress: 3 message(s) past the cursor 7 for 12 s"), "\(report.body)")
        #expect(StatusText.render(view).contains("STALLED"))
        #expect(!StatusText.render(Self.view()).contains("STALLED"))
        #expect(try NodeView.decode(json: view.json()) == view)
    }

    @Test func statusJSONRoundTripsAndPrintsForPeople() throws {
        let view = Self.view()
        let json = view.json()
        #expect(json.contains("\"node_id\":3") && json.contains("\"last_sequence\":10") && json.contains("\"resident_bytes\":4194304"), "\(json)")
        #expect(try NodeView.decode(json: json) == view)
        let text = StatusText.render(view)
        #expect(text.contains("broker") && text.contains(" 9 ") && text.contains("harmonylite-changes-1"), "\(text)")
        #expect(text.contains("parked messages: 1") && text.contains("lease held by this node"), "\(text)")
    }

    @Test func databaseProbeSeesOurTriggersOnly() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/probe.db"
        try makeDatabase(path, "CREATE TABLE t(id INTEGER PRIMARY KEY); CREATE TRIGGER xxharmonylitexx_t AFTER INSERT ON t BEGIN SELECT 1; END;")
        #expect(DatabaseProbe.check(path) == .init(connected: true, cdcInstalled: false))
        try makeDatabase(path, "CREATE TRIGGER __harmonylite__t_on_insert AFTER INSERT ON t BEGIN SELECT 1; END;")
        #expect(DatabaseProbe.check(path) == .init(connected: true, cdcInstalled: true))
        #expect(DatabaseProbe.check(directory.path + "/missing.db").connected == false)
    }
}

@Suite struct ProcessSampleTests {
    @Test func readsThisProcess() throws {
        let sample = try #require(ProcessSample.read(pid: getpid()))
        #expect(sample.residentBytes > 1 << 20)
        #expect(sample.cpuSeconds >= 0)
        #expect(ProcessSample.read(pid: -1) == nil)
    }
}

@Suite struct ControlMessageAdditionsTests {
    @Test func statusAndObservationsRoundTripAndHostileBytesAreRefused() throws {
        for message in [ControlMessage.statusQuery, .statusReport(json: "{\"node_id\":1}"), .observations([])] {
            #expect(try ControlMessage(frame: message.frame) == message)
        }
        var accumulator = ObservationAccumulator()
        accumulator.record(.scanChanges, 0.0003)
        accumulator.record(.scanChanges, .nan)
        accumulator.record(.countChanges, -5)
        let taken = accumulator.take()
        #expect(taken.map(\.metric) == [.countChanges, .scanChanges])
        #expect(taken[0].counts[0] == 1 && taken[0].sums[0] == 0, "a negative duration counts as 0")
        #expect(taken[1].counts.reduce(0, +) == 1, "NaN is dropped")
        let good = ControlMessage.observations(taken).frame
        // An unknown histogram, and a body cut short, are malformed frames, never a crash.
        var unknown = good.body
        unknown[2] = 99
        #expect(throws: IPCError.self) { try ControlMessage(frame: Frame(type: good.type, body: unknown)) }
        #expect(throws: IPCError.self) { try ControlMessage(frame: Frame(type: good.type, body: Array(good.body.dropLast(3)))) }
        #expect(throws: IPCError.self) { try ControlMessage(frame: Frame(type: ControlMessage.statusQuery.frame.type, body: [1])) }
    }
}

/// The HTTP request head is the one decoder of network bytes in the supervisor: mutants of real heads,
/// fed in random pieces as reads deliver them (the server parses what it has after every read), never
/// trap, and what is accepted is a request the endpoints can route.
@Suite struct FuzzHTTPRequests {
    static let seeds = [
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9090\r\nUser-Agent: Prometheus/2.45.0\r\nAccept: text/plain;version=0.0.4\r\n\r\n",
        "GET /health?verbose=1 HTTP/1.0\r\n\r\n",
        "HEAD /health HTTP/1.1\nHost: x\n\n",
        "POST /metrics HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody",
    ].map { Array($0.utf8) }

    @Test func fuzzRequestHeads() {
        var pieces = SplitMix64(seed: 7)
        let report = Fuzzer.run("HTTP request heads", seeds: Self.seeds) { bytes in
            var buffered: [UInt8] = []
            var rest = bytes[...]
            while !rest.isEmpty {
                let take = min(rest.count, 1 + Int(pieces.next() % 64))
                buffered += rest.prefix(take)
                rest = rest.dropFirst(take)
                switch HTTPRequest.parse(buffered) {
                case .incomplete: continue
                case .bad: return false
                case .request(let request): return request.path.hasPrefix("/") && !request.path.contains("?")
                }
            }
            return false
        }
        #expect(report.accepted > 0 && report.refused > 0)
    }

    @Test func aHeadLargerThanTheLimitIsRefusedBeforeItEnds() {
        let endless = Array("GET /metrics HTTP/1.1\r\nX-Pad: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: HTTPRequest.maximumHeadBytes)
        #expect(HTTPRequest.parse(endless) == .bad(status: 431, reason: "request head larger than \(HTTPRequest.maximumHeadBytes) bytes"))
    }
}
