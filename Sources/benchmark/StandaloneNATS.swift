import Foundation
import NATSClient

/// A nats-server with JetStream of the benchmark's own, on a free loopback port; stopped by PID.
final class StandaloneNATS {
    let url: String
    private let server = Process()
    var pid: Int32 { server.processIdentifier }

    init(storeDirectory: String) throws {
        let port = freePort()
        url = "nats://127.0.0.1:\(port)"
        server.executableURL = URL(fileURLWithPath: "/usr/sbin/nats-server")
        server.arguments = ["-a", "127.0.0.1", "-p", "\(port)", "-js", "-sd", storeDirectory]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
    }

    /// Connects, waiting up to 5 s for the server to listen.
    func connect(_ settings: ConnectionSettings? = nil) throws -> NATSConnection {
        let settings = settings ?? ConnectionSettings(urls: [url], name: "benchmark")
        for _ in 0..<50 {
            if let connection = try? NATSConnection.connect(settings) { return connection }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw BenchmarkError("cannot reach the benchmark nats-server at \(url)")
    }

    func stop() {
        kill(server.processIdentifier, SIGINT)
        server.waitUntilExit()
    }
}
