import WorkerRuntime

/// Restores a snapshot at start when the node needs one, and saves snapshots while it holds the lease.
@main
struct Snapshotter {
    static func main() throws {
        let runtime = WorkerRuntime.start(name: "snapshotter")
        let service: SnapshotService
        do {
            service = try SnapshotService(runtime: runtime)
        } catch {
            runtime.logger.error("cannot start: \(error)")
            throw error
        }
        let reason = try runtime.run(service)
        service.stop()
        runtime.logger.info("stopping: \(reason)")
    }
}
