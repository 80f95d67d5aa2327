import Testing

@testable import Operability

/// A worker's long wait ("still waiting for X (N s): cause") is shown by `-status` and `/health`.
@Suite struct WaitReportTests {
    @Test func waitLinesAreRecognizedAndShown() throws {
        #expect(NodeView.Worker.isWait("still waiting for a snapshot (12 s): no snapshot in the store yet"))
        #expect(NodeView.Worker.isWait("waiting for a snapshot (0 s): no snapshot in the store yet"))
        #expect(!NodeView.Worker.isWait("saved a snapshot: 4096 bytes"))
        #expect(!NodeView.Worker.isWait("cannot start: waiting for nothing"))
        var view = ReportTests.view()
        let index = try #require(view.workers.firstIndex { $0.name == .broker })
        view.workers[index].waitingFor = "still waiting for a snapshot (12 s): no snapshot in the store yet"
        #expect(StatusText.render(view).contains("broker: still waiting for a snapshot (12 s): no snapshot in the store yet"))
    }
}
