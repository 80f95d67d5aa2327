import Foundation
import Testing

@testable import IPC
@testable import Operability

/// The bound on time in `/health`, `-status` and `/metrics`: a clock behind the cluster's by more than
/// `max_clock_offset` makes a working node `degraded` (200, the reason given), never unhealthy.
@Suite struct ClockReportTests {
    static func view(aheadMs: Int64?, futureStamps: Int64 = 0) -> NodeView {
        var view = ReportTests.view()
        view.clock = .init(maxOffsetMs: 500, futureStamps: futureStamps, clampedLocalStamps: 2, aheadOrigin: aheadMs == nil ? nil : 2, aheadMs: aheadMs)
        return view
    }

    @Test func aClockBehindByMoreThanTheBoundIsDegradedNotUnhealthy() throws {
        let behind = HealthReport(view: Self.view(aheadMs: 10_012, futureStamps: 7), database: .init(connected: true, cdcInstalled: true))
        #expect(behind.isHealthy)
        let response = behind.response(detailed: true)
        #expect(response.status == 200)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        #expect(body["status"] as? String == "degraded")
        let warnings = body["warnings"] as? [String] ?? []
        #expect(warnings == ["clock: this node's clock is 10012 ms behind node 2's, beyond max_clock_offset (500 ms)"], "\(body)")
        let clock = body["clock"] as? [String: Any] ?? [:]
        #expect(clock["future_stamps"] as? Int == 7 && clock["ahead_ms"] as? Int == 10_012 && clock["ahead_origin"] as? Int == 2, "\(clock)")
        #expect(String(decoding: behind.response(detailed: false).body, as: UTF8.self) == "{\"status\":\"degraded\"}")

        for ahead in [nil, Int64(-40), 500] as [Int64?] {
            let fine = HealthReport(view: Self.view(aheadMs: ahead), database: .init(connected: true, cdcInstalled: true))
            #expect(fine.body.contains("\"status\":\"healthy\"") && fine.warnings.isEmpty, "\(String(describing: ahead))")
        }
        // A failing node stays unhealthy, with the clock warning besides.
        var down = Self.view(aheadMs: 10_012)
        down.natsConnected = false
        #expect(HealthReport(view: down, database: .init(connected: true, cdcInstalled: true)).response(detailed: true).status == 503)
    }

    @Test func statusPrintsTheClockAndItsWarningAndJSONRoundTrips() throws {
        let view = Self.view(aheadMs: 10_012, futureStamps: 7)
        let text = StatusText.render(view)
        #expect(
            text.contains(
                "clock:           farthest ahead: node 2's stamps, 10012 ms ahead of this clock on arrival; max_clock_offset 500 ms; 7 future stamps applied, 2 local stamps clamped since start"
            ), "\(text)")
        #expect(text.contains("WARNING:         clock: this node's clock is 10012 ms behind node 2's"), "\(text)")
        #expect(!StatusText.render(Self.view(aheadMs: -3)).contains("WARNING"))
        #expect(try NodeView.decode(json: view.json()) == view)
        // A node that does not report the clock still decodes.
        #expect(try NodeView.decode(json: ReportTests.view().json()).clock == nil)
    }

    @Test func futureStampsAndTheLeadAreExported() {
        let metrics = NodeMetrics(namespace: "harmonylite", subsystem: "", nodeID: 1)
        metrics.heartbeat(worker: .applier, pid: 10, counters: [.init(.futureStamps, 4), .init(.clockAheadMs, 10_012), .init(.clockAheadOrigin, 2)])
        metrics.heartbeat(worker: .applier, pid: 10, counters: [.init(.futureStamps, 9), .init(.clockAheadMs, 9_500)])
        metrics.heartbeat(worker: .capturer, pid: 11, counters: [.init(.clampedLocalStamps, 3)])
        let text = metrics.registry.emitToString()
        #expect(NodeMetricsTests.value(text, "harmonylite_future_stamps_total{node_id=\"1\"}") == 9, "\(text)")
        #expect(NodeMetricsTests.value(text, "harmonylite_clock_ahead_seconds{node_id=\"1\"}") == 9.5, "\(text)")
        #expect(NodeMetricsTests.value(text, "harmonylite_clamped_local_stamps_total{node_id=\"1\"}") == 3, "\(text)")
        #expect(text.contains("# TYPE harmonylite_future_stamps_total counter"), "\(text)")
    }
}
