import Foundation

/// `/health`: HarmonyLite's JSON body and its 200/503 rule, made honest.
///
/// Healthy when the database answers, NATS is connected, the capture triggers are installed (HarmonyLite's
/// three), every worker runs and no shard stream is stalled (`ShardStallWatch`). The timestamps are this node's own last published and last applied
/// change (HarmonyLite reported the newest message of shard 1's stream for both, and zero times when it
/// had none: here an unknown time is left out). A healthy node with a warning (its clock behind another
/// node's by more than `max_clock_offset`) is `degraded`: still 200, the reason in `warnings`. The body is sent with `Content-Type: application/json`.
public struct HealthReport: Sendable {
    public var view: NodeView
    public var database: DatabaseProbe.Result

    public init(view: NodeView, database: DatabaseProbe.Result) {
        self.view = view
        self.database = database
    }

    /// A shard that makes no progress is unhealthy — unless the applier is waiting for the database write
    /// lock an application holds: that is why it makes none, and it goes on by itself (degraded, not down).
    public var isHealthy: Bool {
        database.connected && view.natsConnected && database.cdcInstalled && view.isRunning && (stalledStreams.isEmpty || applierWaitsForTheDatabase)
    }

    var applierWaitsForTheDatabase: Bool { view.workers.contains { $0.name == .applier && $0.waitingFor != nil } }

    /// Streams that hold messages past this node's cursor and made no progress for a while.
    var stalledStreams: [NodeView.Stream] { view.streams.filter { $0.stalledSeconds != nil } }

    public func response(detailed: Bool) -> HTTPResponse {
        let status = isHealthy ? 200 : 503
        guard detailed else { return HTTPResponse(status: status, contentType: "application/json", body: Array("{\"status\":\"\(statusWord)\"}".utf8)) }
        return HTTPResponse(status: status, contentType: "application/json", body: Array(body.utf8))
    }

    struct Body: Encodable {
        var status: String
        var nodeId: UInt64
        var uptimeSeconds: Int
        var dbConnected: Bool
        var natsConnected: Bool
        var cdcInstalled: Bool
        var tablesTracked: Int64
        var lastReplicatedEventTimestamp: String?
        var lastPublishedEventTimestamp: String?
        var version: String
        var workers: [String: String]
        var streams: [NodeView.Stream]
        var pendingPublish: Int64?
        var parkedMessages: Int64?
        var problems: [String]
        var warnings: [String]
        var clock: NodeView.Clock?
    }

    /// What keeps a working node from being fully healthy without stopping it (the status is `degraded`).
    public var warnings: [String] { [view.clock?.warning].compactMap { $0 } }

    var statusWord: String { !isHealthy ? "unhealthy" : warnings.isEmpty ? "healthy" : "degraded" }

    public var body: String {
        var problems: [String] = []
        if !database.connected { problems.append("database: \(database.error ?? "not answering")") }
        if !database.cdcInstalled && database.connected { problems.append("capture triggers are not installed") }
        if !view.natsConnected { problems.append("NATS is not connected") }
        for worker in view.workers where worker.state != .running { problems.append("\(worker.name) is \(worker.state)") }
        // Degraded, still healthy: the worker runs and goes on by itself once the lock is released.
        for worker in view.workers { if let waiting = worker.waitingFor { problems.append("\(worker.name) is \(waiting)") } }
        for stream in stalledStreams {
            problems.append(
                "\(stream.name) makes no progress: \(stream.behind.map(String.init) ?? "some") message(s) past the cursor \(stream.cursor.map(String.init) ?? "?") for \(Int(stream.stalledSeconds ?? 0)) s"
            )
        }
        let body = Body(
            status: statusWord, nodeId: view.nodeId, uptimeSeconds: Int(view.uptimeSeconds),
            dbConnected: database.connected, natsConnected: view.natsConnected, cdcInstalled: database.cdcInstalled,
            tablesTracked: view.tablesTracked ?? 0,
            lastReplicatedEventTimestamp: view.lastAppliedUnixMs.map(Self.rfc3339), lastPublishedEventTimestamp: view.lastPublishedUnixMs.map(Self.rfc3339),
            version: view.version, workers: Dictionary(uniqueKeysWithValues: view.workers.map { ($0.name.rawValue, $0.state.rawValue) }), streams: view.streams,
            pendingPublish: view.pendingPublish, parkedMessages: view.parkedMessages, problems: problems,
            warnings: warnings, clock: view.clock
        )
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return (try? String(decoding: encoder.encode(body), as: UTF8.self)) ?? "{}"
    }

    /// RFC 3339 in UTC with milliseconds.
    static func rfc3339(_ unixMilliseconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: Double(unixMilliseconds) / 1000))
    }
}
