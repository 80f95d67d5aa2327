import WorkerRuntime

/// Captures the application's writes and hands them to the broker.
@main
struct Capturer {
    static func main() { WorkerRuntime.main(role: .capturer, CaptureService.init) }
}
