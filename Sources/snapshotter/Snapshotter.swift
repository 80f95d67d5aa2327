import WorkerRuntime

/// Takes and restores snapshots. For now it only joins the node; leader-elected snapshots arrive with the
/// snapshot issue.
@main
struct Snapshotter {
    static func main() throws {
        let runtime = WorkerRuntime.start(name: "snapshotter")
        try runtime.reportReady(runtime.configuration.snapshot.enabled ? "snapshots enabled (store \(runtime.configuration.snapshot.store))" : "snapshots disabled")
        let reason = try runtime.run { [] }
        runtime.logger.info("stopping: \(reason)")
    }
}
