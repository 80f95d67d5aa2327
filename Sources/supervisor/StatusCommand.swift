import CurlTransfer
import HarmonyConfig
import IPC
import Operability

#if canImport(Glibc)
import Glibc
#endif

/// `harmonylite -status [-json]`: asks the running node over its control socket.
enum StatusCommand {
    static func run(_ config: Configuration, json: Bool) throws -> String {
        let path = try controlSocketPath(for: config)
        let connection: FrameConnection
        do {
            connection = FrameConnection(fd: try UnixSocket.connect(path: path), maximumFrameSize: 1 << 20)
        } catch {
            throw SupervisorError(.notRunning, "no running node for \(config.dbPath): cannot connect to \(path) (\(error))")
        }
        defer { connection.close() }
        try connection.send(ControlMessage.statusQuery.frame)
        guard let frame = try connection.receive(timeoutMilliseconds: 5000) else {
            throw SupervisorError(.notRunning, "the node at \(path) did not answer within 5 s")
        }
        guard case .statusReport(let report) = try ControlMessage(frame: frame) else {
            throw SupervisorError(.notRunning, "the node at \(path) answered something else than a status report")
        }
        if json { return report }
        let view = try NodeView.decode(json: report)
        let nats = view.natsMonitoring.map { url in
            NATSOverview(monitoringURL: url, routez: get(url + "/routez"), jsz: get(url + "/jsz"), leafz: get(url + "/leafz"))
        }
        return StatusText.render(view) + (nats.map { "\n" + $0.lines.joined(separator: "\n") } ?? "")
    }

    /// One GET of the embedded server's monitoring endpoint: its body, nil on any failure (2 s at most).
    private static func get(_ url: String) -> [UInt8]? {
        var request = CurlRequest(url: url)
        request.connectTimeoutSeconds = 2
        request.totalTimeoutSeconds = 2
        request.maximumBytes = Int64(NATSOverview.maximumAnswerBytes)
        guard let response = try? request.perform(), response.status == 200 else { return nil }
        return response.body
    }

    /// The running node's control socket, in the run directory its node lock records (so `-status` from a
    /// shell finds a node systemd runs with `RUNTIME_DIRECTORY`), else where this environment puts it.
    static func controlSocketPath(for config: Configuration) throws -> String {
        // The running node's own run directory (recorded in its lock, so a shell finds a node systemd runs).
        try (NodeLock.recordedRunDirectory(for: config) ?? RunDirectoryLayout.path(for: config)) + "/" + ControlChannel.socketName
    }
}
