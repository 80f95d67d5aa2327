import Foundation
import TestSupport
import Testing

@testable import NATSClient

/// A real nats-server with JetStream, started on a free loopback port and stopped by PID.
final class JetStreamServer {
    let url: String
    private let process = Process()

    init(directory: String) throws {
        let port = try freePort()
        url = "nats://127.0.0.1:\(port)"
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/nats-server")
        process.arguments = ["-a", "127.0.0.1", "-p", "\(port)", "-js", "-sd", directory + "/js"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        guard eventually(timeout: 10, { (try? NATSConnection.connect(ConnectionSettings(urls: [url], name: "probe"))) != nil }) else {
            throw TestFailure("nats-server did not start on \(url)")
        }
    }

    deinit {
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
    }
}

/// The object store built on JetStream calls, against a real server, read back by us and by an
/// independent client (nats-py), and the other way round.
@Suite struct ObjectStoreTests {
    let directory: TemporaryDirectory
    let server: JetStreamServer

    init() throws {
        directory = try TemporaryDirectory()
        server = try JetStreamServer(directory: directory.path)
    }

    func randomFile(_ name: String, bytes: Int) throws -> String {
        let path = directory.path + "/" + name
        var generator = SystemRandomNumberGenerator()
        try Data((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func multiMegabyteFileRoundTripsAndReplaces() throws {
        let connection = try NATSConnection.connect(ConnectionSettings(urls: [server.url], name: "test"))
        let bucket = try ObjectStoreBucket(connection: connection, bucket: "harmonylite-snapshots", replicas: 1)
        #expect(try bucket.info("snapshot.db") == nil)
        let original = try randomFile("original", bytes: 5 * 1024 * 1024 + 12345)
        var reported: [Int64] = []
        let stored = try bucket.put("snapshot.db", file: original, headers: ["Harmonylite-Snapshot": ["{}"]]) { done, _ in reported.append(done) }
        #expect(stored.chunks == 41 && stored.size == 5 * 1024 * 1024 + 12345)
        #expect(reported.last == stored.size && reported.count == 41)
        let copy = directory.path + "/copy"
        try bucket.get("snapshot.db", to: copy)
        #expect(FileManager.default.contentsEqual(atPath: original, andPath: copy))
        // A second put replaces the first; the first one's chunks are purged.
        let second = try randomFile("second", bytes: 300_000)
        let replaced = try bucket.put("snapshot.db", file: second)
        #expect(try bucket.info("snapshot.db") == replaced)
        try bucket.get("snapshot.db", to: copy)
        #expect(FileManager.default.contentsEqual(atPath: second, andPath: copy))
    }

    /// nats-py's object store reads what we stored (and checks its digest), and we read what it stored.
    @Test func anotherNATSClientReadsAndWritesTheSameLayout() throws {
        let connection = try NATSConnection.connect(ConnectionSettings(urls: [server.url], name: "test"))
        let bucket = try ObjectStoreBucket(connection: connection, bucket: "shared", replicas: 1)
        let ours = try randomFile("ours", bytes: 1_000_000)
        _ = try bucket.put("ours.db", file: ours)
        let theirs = try randomFile("theirs", bytes: 700_000)
        let script = """
            import asyncio, nats, sys
            async def main():
                nc = await nats.connect("\(server.url)")
                store = await nc.jetstream().object_store("shared")
                got = await store.get("ours.db")
                open("\(directory.path)/read-by-python", "wb").write(got.data)
                await store.put("theirs.db", open("\(theirs)", "rb").read())
                await nc.close()
            asyncio.run(main())
            """
        let result = try runCommand("/usr/bin/env", ["python3", "-c", script])
        #expect(result.status == 0, "\(result.output)")
        #expect(FileManager.default.contentsEqual(atPath: ours, andPath: directory.path + "/read-by-python"))
        #expect(try bucket.get("theirs.db", to: directory.path + "/read-by-us") != nil)
        #expect(FileManager.default.contentsEqual(atPath: theirs, andPath: directory.path + "/read-by-us"))
    }
}
