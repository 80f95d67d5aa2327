import Testing

@testable import IPC

/// The broker's fetches and the IPC frame limit agree: the fullest fetch it may ask JetStream for still
/// travels to the applier as one frame that the applier's decoder accepts.
@Suite struct DeliveryLimitTests {
    @Test func theFullestFetchFitsOneFrame() throws {
        let count = DataMessage.maximumDeliveriesPerMessage
        // Stream names (and subjects) far longer than any `<stream_prefix>-<n>`.
        let stream = String(repeating: "s", count: 1024)
        var deliveries: [DataMessage.Delivery] = []
        var left = DataMessage.maximumDeliveryBytes
        for index in 0..<count {
            let size = index == count - 1 ? left : DataMessage.maximumDeliveryBytes / count
            var delivery = DataMessage.Delivery(
                stream: stream, sequence: .max, subject: stream + ".18446744073709551615", payload: [UInt8](repeating: 1, count: size))
            // The longest message id the broker passes on (`PullConsumer.maximumMessageIDLength`).
            delivery.messageID = String(repeating: "m", count: 200)
            deliveries.append(delivery)
            left -= size
        }
        let encoded = DataMessage.deliver(deliveries).frame.encoded
        #expect(encoded.count <= Frame.defaultMaximumSize)
        var decoder = FrameDecoder()
        decoder.append(encoded)
        let frame = try #require(try decoder.next())
        #expect(try DataMessage(frame: frame) == .deliver(deliveries))
    }

}
