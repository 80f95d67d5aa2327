import Foundation

/// What `harmonylite -status` prints for a person (`-status -json` prints the `NodeView` itself).
public enum StatusText {
    public static func render(_ view: NodeView) -> String {
        var lines: [String] = []
        lines.append("HarmonyLite node \(view.nodeId) (\(view.version)): \(view.phase), up \(duration(view.uptimeSeconds))")
        lines.append("")
        lines.append(row(["WORKER", "STATE", "PID", "RESTARTS", "UPTIME", "RSS", "CPU"]))
        for worker in view.workers {
            lines.append(
                row([
                    worker.name.rawValue, worker.state.rawValue, worker.pid.map(String.init) ?? "-", String(worker.restarts),
                    worker.uptimeSeconds.map(duration) ?? "-", worker.residentBytes.map(bytes) ?? "-",
                    worker.cpuSeconds.map { String(format: "%.1fs", $0) } ?? "-",
                ]))
        }
        for worker in view.workers {
            if let waiting = worker.waitingFor { lines.append("\(worker.name): \(waiting)") }
        }
        lines.append("")
        lines.append(row(["STREAM", "LAST SEQ", "CURSOR", "BEHIND", "LAG", "PROGRESS"]))
        for stream in view.streams {
            lines.append(
                row([
                    stream.name, stream.lastSequence.map(String.init) ?? "-", stream.cursor.map(String.init) ?? "-",
                    stream.behind.map(String.init) ?? "-", stream.lagSeconds.map { String(format: "%.3fs", $0) } ?? "-",
                    stream.stalledSeconds.map { "STALLED \(duration($0))" } ?? "ok",
                ]))
        }
        lines.append("")
        lines.append("NATS:            \(view.natsConnected ? "connected" : "NOT connected") (\(view.natsServers.joined(separator: ", ")))")
        lines.append("pending publish: \(view.pendingPublish.map(String.init) ?? "-")")
        lines.append("parked messages: \(view.parkedMessages.map(String.init) ?? "-")")
        lines.append(
            "since start:     \(view.publishedRows) rows published, \(view.appliedRows) applied, \(view.conflicts) conflicts, \(view.publishRetries) publish retries"
        )
        let snapshot = view.snapshot
        if snapshot.enabled {
            let age = snapshot.ageSeconds.map { "\(duration($0)) old" } ?? "none known"
            let size = snapshot.sizeBytes.map { ", \(bytes($0))" } ?? ""
            let lease = snapshot.leaseHeldHere.map { $0 ? "held by this node" : "held by another node or none" } ?? "unknown"
            lines.append("snapshot:        \(age)\(size); lease \(lease); \(snapshot.saved) saved, \(snapshot.restored) restored since start")
        } else {
            lines.append("snapshot:        disabled")
        }
        if let clock = view.clock {
            var ahead = "no remote stamps seen"
            if let origin = clock.aheadOrigin, let ms = clock.aheadMs {
                ahead = "farthest ahead: node \(origin)'s stamps, \(ms) ms ahead of this clock on arrival"
            }
            lines.append(
                "clock:           \(ahead); max_clock_offset \(clock.maxOffsetMs) ms; \(clock.futureStamps) future stamps applied, \(clock.clampedLocalStamps) local stamps clamped since start"
            )
            if let warning = clock.warning { lines.append("WARNING:         \(warning)") }
        }
        if let sleep = view.sleepTimeoutSeconds { lines.append("sleep_timeout:   stops after \(duration(sleep)) more without changes") }
        return lines.joined(separator: "\n")
    }

    static func row(_ cells: [String]) -> String {
        let widths = [24, 11, 9, 9, 9, 10, 8]
        return zip(cells, widths).map { $0.padding(toLength: max($1, $0.count + 1), withPad: " ", startingAt: 0) }.joined().trimmingCharacters(in: .whitespaces)
    }

    static func duration(_ seconds: Double) -> String {
        let whole = Int(seconds)
        if whole < 60 { return String(format: "%.1fs", seconds) }
        if whole < 3600 { return "\(whole / 60)m\(whole % 60)s" }
        if whole < 86400 { return "\(whole / 3600)h\(whole % 3600 / 60)m" }
        return "\(whole / 86400)d\(whole % 86400 / 3600)h"
    }

    static func bytes(_ count: Int64) -> String {
        if count < 1 << 20 { return "\(count / 1024) KiB" }
        return String(format: "%.1f MiB", Double(count) / 1_048_576)
    }
}
