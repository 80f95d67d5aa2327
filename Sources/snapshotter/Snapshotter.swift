import WorkerRuntime

/// Restores a snapshot at start when the node needs one, and saves snapshots while it holds the lease.
@main
struct Snapshotter {
    static func main() { WorkerRuntime.main(role: .snapshotter, SnapshotService.init) }
}
