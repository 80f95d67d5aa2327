import ChangeEvents
import Testing

/// The one check of a cursor against a shard stream as it is now (broker, snapshotter, restore decision).
@Suite struct StreamPositionTests {
    @Test func theNextMessageAfterTheCursorIsNoGap() {
        #expect(StreamPosition.check(position: 10, firstSequence: 11) == .ok)
        #expect(StreamPosition.check(position: 10, firstSequence: 3) == .ok)
        #expect(StreamPosition.check(position: 0, firstSequence: 1) == .ok)
    }

    @Test func anEmptyStreamIsNoGapWhateverTheCursor() {
        #expect(StreamPosition.check(position: 0, firstSequence: nil) == .ok)
        #expect(StreamPosition.check(position: 500, firstSequence: nil) == .ok)
    }

    @Test func messagesGoneBeforeTheNodeAppliedThemAreNamed() {
        #expect(StreamPosition.check(position: 10, firstSequence: 12) == .missing(11...11))
        #expect(StreamPosition.check(position: 0, firstSequence: 100) == .missing(1...99))
    }

    @Test func aCursorAtTheTopOfTheRangeDoesNotOverflow() {
        #expect(StreamPosition.check(position: .max, firstSequence: 5) == .ok)
        #expect(StreamPosition.check(position: .max - 1, firstSequence: .max) == .ok)
        #expect(StreamPosition.check(position: 0, firstSequence: .max) == .missing(1...(.max - 1)))
    }

    @Test func anotherStreamUnderTheSameNameComesBeforeAnyGap() {
        #expect(StreamPosition.check(position: 7, recorded: 100, current: 200, firstSequence: 50) == .replaced(recorded: 100, current: 200))
    }

    @Test func anUnknownIdentityOrAnUnconsumedStreamIsNotAReplacement() {
        #expect(StreamPosition.check(position: 7, recorded: nil, current: 200, firstSequence: 8) == .ok)
        #expect(StreamPosition.check(position: 7, recorded: 0, current: 200, firstSequence: 8) == .ok)
        #expect(StreamPosition.check(position: 7, recorded: 100, current: 0, firstSequence: 8) == .ok)
        #expect(StreamPosition.check(position: 0, recorded: 100, current: 200, firstSequence: 1) == .ok)
        #expect(StreamPosition.check(position: 7, recorded: 100, current: 100, firstSequence: 8) == .ok)
    }
}
