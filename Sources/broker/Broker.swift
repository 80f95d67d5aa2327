import WorkerRuntime

/// The node's one NATS client: creates the shard streams, publishes the capturer's batches, consumes
/// every shard for the applier.
@main
struct Broker {
    static func main() { WorkerRuntime.main(role: .broker, BrokerService.init) }
}
