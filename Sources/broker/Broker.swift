import WorkerRuntime

/// The node's one NATS client: creates the shard streams, publishes the capturer's batches, consumes
/// every shard for the applier.
@main
struct Broker {
    static func main() throws {
        let runtime = WorkerRuntime.start(name: "broker")
        let service = try BrokerService(runtime: runtime)
        let reason = try runtime.run(service)
        runtime.logger.info("stopping: \(reason)")
        service.stop()
    }
}
