import Foundation
import SystemCalls
import Testing

/// The worker loop's wait (`Poll.wait(_:timeoutMicroseconds:)`, ppoll): a timeout shorter than a millisecond
/// is waited, not rounded to 0 or to a whole millisecond's tick; a readable descriptor ends the wait at once.
@Suite struct PollTests {
    @Test func aSubMillisecondTimeoutIsWaitedAndNeverEndsEarly() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { ends.forEach { close($0) } }
        var descriptors = [Poll.watch(ends[0])]
        for timeout: Int64 in [0, 250, 600] {
            let started = DispatchTime.now().uptimeNanoseconds
            let ready = try Poll.wait(&descriptors, timeoutMicroseconds: timeout)
            let waited = DispatchTime.now().uptimeNanoseconds - started
            #expect(ready == 0)
            #expect(waited >= UInt64(timeout) * 1000)
        }
    }

    @Test func aReadableDescriptorEndsTheWait() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { ends.forEach { close($0) } }
        #expect(write(ends[1], "x", 1) == 1)
        var descriptors = [Poll.watch(ends[0])]
        #expect(try Poll.wait(&descriptors, timeoutMicroseconds: -1) == 1)
        #expect(descriptors[0].revents & Int16(POLLIN) != 0)
    }
}
