import WorkerRuntime

/// Applies other nodes' changes to the database.
@main
struct Applier {
    static func main() throws {
        let runtime = WorkerRuntime.start(name: "applier")
        let service: ApplyService
        do {
            service = try ApplyService(runtime: runtime)
        } catch {
            runtime.logger.error("cannot start applying: \(error)")
            throw error
        }
        let reason = try runtime.run(service)
        runtime.logger.info("stopping: \(reason)")
        try service.flush()
    }
}
