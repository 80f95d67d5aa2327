import Testing

@testable import ChangeEvents
@testable import SQLiteKit

@Suite struct MessageCuttingTests {
    static func event(_ id: Int64, blobBytes: Int) -> ChangeEvent {
        ChangeEvent(
            changeID: id, table: "files", operation: .upsert, stamp: 1, writer: 1,
            columns: ["id", "data"], values: [.integer(id), .blob([UInt8](repeating: 7, count: blobBytes))], keyCount: 1)
    }

    @Test func encodedSizeIsTheBodyGrowth() {
        let events = ChangeEventsTests.sampleBatch(5).events
        for event in events {
            let without = ChangeBatch(origin: 1, schemaHash: "h", events: []).encoded(compress: false).count
            let with = ChangeBatch(origin: 1, schemaHash: "h", events: [event]).encoded(compress: false).count
            #expect(event.encodedSize == with - without)
        }
    }

    @Test func smallEventsFillMessagesUpToTheTarget() {
        let events = (1...100).map { Self.event($0, blobBytes: 1000) }
        let cut = MessageCutting(targetBytes: 10_000, maximumBytes: 50_000).cut(events)
        #expect(cut.refused.isEmpty)
        #expect(cut.messages.flatMap { $0 } == events)
        for message in cut.messages.dropLast() {
            let size = message.reduce(0) { $0 + $1.encodedSize }
            #expect(size >= 10_000 && size < 11_100)
        }
    }

    @Test func noMessageExceedsTheMaximum() {
        let sizes = [30_000, 30_000, 45_000, 10, 49_000, 20_000, 20_000, 20_000]
        let events = sizes.enumerated().map { Self.event(Int64($0.offset), blobBytes: $0.element) }
        let cut = MessageCutting(targetBytes: 40_000, maximumBytes: 50_000).cut(events)
        #expect(cut.refused.isEmpty)
        #expect(cut.messages.flatMap { $0 } == events)
        for message in cut.messages { #expect(message.reduce(0) { $0 + $1.encodedSize } <= 50_000) }
    }

    @Test func anOversizedEventIsRefusedAndTheRestFlows() {
        let events = [Self.event(1, blobBytes: 100), Self.event(2, blobBytes: 60_000), Self.event(3, blobBytes: 100)]
        let cut = MessageCutting(targetBytes: 40_000, maximumBytes: 50_000).cut(events)
        #expect(cut.refused == [events[1]])
        #expect(cut.messages == [[events[0], events[2]]])
    }

    /// The largest event allowed in a 1 MiB message (NATS's default max_payload) fits once encoded, even
    /// incompressible and compressed (zstd's growth), and one byte more is refused.
    @Test(arguments: [false, true])
    func theLargestEventFitsTheMessage(compress: Bool) {
        let messageBytes = 1 << 20
        let maximum = MessageCutting.eventBytes(inMessagesOf: messageBytes)
        let overhead = Self.event(1, blobBytes: 0).encodedSize
        var generator = SystemRandomNumberGenerator()
        let random = (0..<(maximum - overhead)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let largest = ChangeEvent(
            changeID: 1, table: "files", operation: .upsert, stamp: 1, writer: 1,
            columns: ["id", "data"], values: [.integer(1), .blob(random)], keyCount: 1)
        #expect(largest.encodedSize == maximum)
        let cut = MessageCutting(maximumBytes: maximum).cut([largest, Self.event(2, blobBytes: maximum - overhead + 1)])
        #expect(cut.messages == [[largest]])
        #expect(cut.refused.map(\.changeID) == [2])
        let payload = ChangeBatch(origin: .max, schemaHash: String(repeating: "ab", count: 32), events: [largest]).encoded(compress: compress)
        // Leaves room for the message id header.
        #expect(payload.count + 512 <= messageBytes)
    }
}
