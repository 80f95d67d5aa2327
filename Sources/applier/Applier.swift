import WorkerRuntime

/// Applies other nodes' changes to the database.
@main
struct Applier {
    static func main() { WorkerRuntime.main(role: .applier, ApplyService.init) }
}
