import Testing

@testable import BinaryCoding
@testable import IPC

/// The broker's word that a stream no longer holds a range: round trip, and an empty range is refused.
@Suite struct GoneMessageTests {
    @Test(arguments: [1...1, 7...9, UInt64.max - 1...UInt64.max])
    func goneRoundTrips(_ missing: ClosedRange<UInt64>) throws {
        let message = DataMessage.gone(stream: "harmonylite-changes-2", missing: missing)
        var decoder = FrameDecoder()
        decoder.append(message.frame.encoded)
        #expect(try DataMessage(frame: try #require(try decoder.next())) == message)
    }

    @Test func anEmptyOrTruncatedRangeIsAnError() {
        var writer = BinaryWriter()
        writer.write("s")
        writer.write(UInt64(9))
        writer.write(UInt64(8))
        let backwards = #expect(throws: IPCError.self) { try DataMessage(frame: Frame(type: 0x35, body: writer.bytes)) }
        #expect(backwards?.description.contains("9…8") == true)
        var truncated = DataMessage.gone(stream: "s", missing: 1...2).frame
        truncated.body.removeLast()
        #expect(throws: IPCError.self) { try DataMessage(frame: truncated) }
    }
}

/// The data socket's hello names the layout of what follows: a worker of another build (a reload rolls the
/// workers one at a time) is refused at its hello, before any delivery is read in the wrong layout.
@Suite struct DataProtocolVersionTests {
    @Test func theHelloCarriesTheVersionAndRoundTrips() throws {
        let frame = DataMessage.hello(role: .applier).frame
        #expect(frame.body.last == DataMessage.protocolVersion)
        #expect(try DataMessage(frame: frame) == .hello(role: .applier))
    }

    @Test func aHelloOfAnEarlierBuildWithoutAVersionIsRefusedNamingBoth() {
        var frame = DataMessage.hello(role: .applier).frame
        frame.body.removeLast()
        #expect {
            _ = try DataMessage(frame: frame)
        } throws: { error in
            "\(error)".contains("data protocol 1, this broker \(DataMessage.protocolVersion)")
        }
    }

    @Test func anotherVersionIsRefused() {
        var frame = DataMessage.hello(role: .capturer).frame
        frame.body[frame.body.count - 1] = DataMessage.protocolVersion &+ 1
        #expect(throws: IPCError.self) { _ = try DataMessage(frame: frame) }
    }
}
