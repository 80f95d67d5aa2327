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
