import Foundation
import TestSupport
import Testing

@testable import BinaryCoding
@testable import IPC

@Suite struct FrameAndMessageTests {
    static let samples: [ControlMessage] = [
        .hello(.init(worker: "broker", pid: 4242)),
        .hello(.init(protocolVersion: 9, worker: "ünïcode ☃", pid: -1)),
        .welcome(.init(heartbeatIntervalMilliseconds: 1250, configuration: Array("{\"a\":1}".utf8))),
        .welcome(.init(heartbeatIntervalMilliseconds: 0, configuration: [])),
        .rejected(reason: "no worker \"x\""),
        .ready(detail: ""),
        .ready(detail: "JetStream answering"),
        .heartbeat(counters: []),
        .heartbeat(counters: [.init(.natsConnected, 1), .init(name: "min", Int64.min), .init(name: "max", Int64.max)]),
        .status(String(repeating: "é", count: 2000)),
        .stop(reason: "supervisor request"),
    ]

    @Test(arguments: samples)
    func messageRoundTripsThroughTheWire(_ message: ControlMessage) throws {
        var decoder = FrameDecoder()
        decoder.append(message.frame.encoded)
        let frame = try #require(try decoder.next())
        #expect(try ControlMessage(frame: frame) == message)
        #expect(try decoder.next() == nil)
        try decoder.finish()
    }

    @Test func framesSurviveByteAtATimeDelivery() throws {
        let wire = Self.samples.flatMap { $0.frame.encoded }
        var decoder = FrameDecoder()
        var decoded: [ControlMessage] = []
        for byte in wire {
            decoder.append([byte])
            while let frame = try decoder.next() { decoded.append(try ControlMessage(frame: frame)) }
        }
        #expect(decoded == Self.samples)
    }

    @Test func truncatedFrameIsReportedAtEndOfStream() throws {
        var decoder = FrameDecoder()
        decoder.append(Array(ControlMessage.ready(detail: "abcdef").frame.encoded.dropLast(3)))
        #expect(try decoder.next() == nil)
        #expect(throws: IPCError(.truncatedFrame(bufferedBytes: 12))) { try decoder.finish() }
    }

    @Test func oversizedLengthIsRejectedBeforeTheBodyArrives() {
        var decoder = FrameDecoder(maximumFrameSize: 1024)
        decoder.append([0x00, 0x00, 0x04, 0x01])
        #expect(throws: IPCError(.frameTooLarge(size: 1025, maximum: 1024))) { try decoder.next() }
    }

    @Test func emptyFrameIsAnError() {
        var decoder = FrameDecoder()
        decoder.append([0, 0, 0, 0])
        #expect(throws: IPCError(.emptyFrame)) { try decoder.next() }
    }

    @Test func unknownTypeIsAnError() {
        #expect(throws: IPCError(.unknownMessageType(0x7f))) { try ControlMessage(frame: Frame(type: 0x7f, body: [])) }
    }

    @Test func malformedBodiesAreErrors() throws {
        // A string length pointing past the end.
        var short = ControlMessage.ready(detail: "hello").frame
        short.body.removeLast()
        #expect(throws: IPCError.self) { try ControlMessage(frame: short) }
        // Trailing bytes after a complete body.
        var long = ControlMessage.stop(reason: "x").frame
        long.body.append(0)
        let trailing = #expect(throws: IPCError.self) { try ControlMessage(frame: long) }
        #expect(trailing?.description.contains("trailing") == true)
        // Invalid UTF-8 inside a string.
        let invalid = Frame(type: 0x12, body: [0, 0, 0, 2, 0xC3, 0x28])
        let utf8 = #expect(throws: IPCError.self) { try ControlMessage(frame: invalid) }
        #expect(utf8?.description.contains("invalidUTF8") == true)
        // A heartbeat announcing more counters than it carries.
        let counters = Frame(type: 0x11, body: [0xFF, 0xFF])
        #expect(throws: IPCError.self) { try ControlMessage(frame: counters) }
    }

    /// Random bytes and mutated valid frames: the decoder and message parser return frames or typed
    /// errors, never crash, never loop.
    @Test func fuzzedInputNeverCrashes() {
        var rng = SplitMix64(seed: 0x4861_726D_6F6E_79)
        var decodedFrames = 0
        var errors = 0
        let valid = Self.samples.map { $0.frame.encoded }
        for round in 0..<20_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int(rng.next() % 96)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                // Keep lengths plausible half the time so bodies get parsed, not just rejected as too large.
                if bytes.count >= 4 && rng.next() % 2 == 0 { bytes[0] = 0; bytes[1] = 0 }
            } else {
                bytes = valid[Int(rng.next() % UInt64(valid.count))]
                for _ in 0..<(1 + rng.next() % 4) {
                    let index = Int(rng.next() % UInt64(bytes.count))
                    bytes[index] = UInt8(truncatingIfNeeded: rng.next())
                }
                if rng.next() % 3 == 0 { bytes.removeLast(Int(rng.next() % UInt64(bytes.count))) }
            }
            var decoder = FrameDecoder(maximumFrameSize: 4096)
            decoder.append(bytes)
            do {
                while let frame = try decoder.next() {
                    decodedFrames += 1
                    do { _ = try ControlMessage(frame: frame) } catch { errors += 1 }
                }
                try decoder.finish()
            } catch {
                errors += 1
            }
        }
        // Both paths were exercised: some input decoded into frames, some was rejected.
        #expect(decodedFrames > 1000)
        #expect(errors > 1000)
    }
}

@Suite struct SocketTests {
    @Test func connectionCarriesFramesAndKnowsItsPeer() throws {
        let directory = try TemporaryDirectory()
        let run = directory.path + "/run/nested"
        try RunDirectory.prepare(run)
        var info = stat()
        stat(run, &info)
        #expect(info.st_mode & 0o777 == 0o700)

        let path = run + "/" + ControlChannel.socketName
        let listener = try UnixSocket.listen(path: path)
        defer { close(listener) }
        stat(path, &info)
        #expect(info.st_mode & 0o777 == 0o600)

        let client = FrameConnection(fd: try UnixSocket.connect(path: path))
        let server = FrameConnection(fd: try #require(try UnixSocket.accept(listener)))
        let peer = try UnixSocket.peerCredentials(server.fd)
        #expect(peer.pid == getpid())
        #expect(peer.uid == getuid())

        try client.send(ControlMessage.ready(detail: "up").frame)
        let frame = try #require(try server.receive(timeoutMilliseconds: 1000))
        #expect(try ControlMessage(frame: frame) == .ready(detail: "up"))
        #expect(try server.receive(timeoutMilliseconds: 10) == nil)

        // The peer leaves in the middle of a frame.
        let partial = ControlMessage.status("half a message").frame.encoded
        _ = partial.prefix(7).withUnsafeBytes { write(client.fd, $0.baseAddress, 7) }
        client.close()
        #expect(throws: IPCError(.truncatedFrame(bufferedBytes: 7))) { try server.receive(timeoutMilliseconds: 1000) }
    }

    @Test func listenRefusesToReplaceARegularFile() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/not-a-socket"
        _ = FileManager.default.createFile(atPath: path, contents: Data("keep me".utf8))
        #expect(throws: IPCError.self) { try UnixSocket.listen(path: path) }
        #expect(FileManager.default.contents(atPath: path) == Data("keep me".utf8))
    }

    @Test func overlongSocketPathIsATypedError() {
        let path = "/tmp/" + String(repeating: "x", count: 120)
        #expect(throws: IPCError(.pathTooLong(path))) { try UnixSocket.connect(path: path) }
    }
}

/// A small deterministic generator, so a failing fuzz run can be replayed.

/// Frames as they arrive on a socket, cut by `FrameDecoder` and parsed as control or data messages.
@Suite struct FuzzIPCFrames {
    static let dataSamples: [DataMessage] = [
        .hello(role: .applier),
        .publish(.init(batchID: 7, shard: 2, messageID: "n1-i-2-7", payload: [1, 0, 1, 2, 3])),
        .published(batchID: .max, stream: "hl-1", sequence: .max),
        .publishFailed(batchID: 1, reason: "timeout"),
        .subscribe(cursor: [.init(stream: "hl-1", sequence: 10), .init(stream: "hl-2", sequence: .max)]),
        .credit(count: 32),
        .deliver([.init(stream: "hl-1", sequence: 11, subject: "hl-1.3", payload: [1, 0]), .init(stream: "hl-2", sequence: 1, subject: "", payload: [])]),
        .deliver([
            {
                var named = DataMessage.Delivery(stream: "hl-1", sequence: 12, subject: "hl-1.3", payload: [1, 0]); named.messageID = "3.ab.1.1-2"; return named
            }()
        ]),
        .applied(.init(stream: "hl-1", sequence: 11)),
    ]

    /// Decodes every frame in `bytes` as `parse` says; true when at least one message was accepted.
    static func decodeAll(_ bytes: [UInt8], _ parse: (Frame) throws -> Void) -> Bool {
        var decoder = FrameDecoder(maximumFrameSize: 1 << 16)
        decoder.append(bytes)
        var accepted = false
        while let frame = try? decoder.next() {
            if (try? parse(frame)) != nil { accepted = true }
        }
        return accepted
    }

    @Test func fuzzControlFrames() {
        let seeds = FrameAndMessageTests.samples.filter { $0.frame.body.count < 4096 }.map(\.frame.encoded)
        let report = Fuzzer.run("IPC control frames", seeds: seeds) { Self.decodeAll($0) { _ = try ControlMessage(frame: $0) } }
        #expect(report.accepted > 0 && report.refused > 0)
    }

    @Test func fuzzDataFrames() {
        let seeds = Self.dataSamples.map(\.frame.encoded)
        let report = Fuzzer.run("IPC data frames", seeds: seeds) { Self.decodeAll($0) { _ = try DataMessage(frame: $0) } }
        #expect(report.accepted > 0 && report.refused > 0)
    }
}

/// Text quoting outside bytes (a 700 KB table name from another node's event) never makes a control frame
/// the supervisor refuses (1 MiB): status, ready, stop and rejected texts are cut on a character boundary.
@Suite struct BoundedTextTests {
    @Test func aStatusLineNamingAHugeTableFitsTheControlFrame() throws {
        let table = String(repeating: "é", count: 350_000) + "☃"
        for message in [ControlMessage.status("message parked: table \(table)"), .ready(detail: table), .stop(reason: table), .rejected(reason: table)] {
            let encoded = message.frame.encoded
            #expect(encoded.count <= ControlMessage.maximumTextBytes + 16)
            var decoder = FrameDecoder(maximumFrameSize: 1 << 20)
            decoder.append(encoded)
            let decoded = try ControlMessage(frame: try #require(try decoder.next()))
            guard case .status(let text) = decoded else { continue }
            #expect(text.hasPrefix("message parked: table éé"))
            #expect(text.hasSuffix("more bytes cut)"))
        }
        #expect(ControlMessage.bounded("short") == "short")
    }
}
