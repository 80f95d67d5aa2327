import WorkerRuntime

/// Captures the application's writes and hands them to the broker.
@main
struct Capturer {
    static func main() throws {
        let runtime = WorkerRuntime.start(name: "capturer")
        let service: CaptureService
        do {
            service = try CaptureService(runtime: runtime)
        } catch {
            runtime.logger.error("cannot start capturing: \(error)")
            throw error
        }
        let reason = try runtime.run(service)
        runtime.logger.info("stopping: \(reason)")
        try service.storeWatermark()
    }
}
