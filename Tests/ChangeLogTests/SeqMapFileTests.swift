import Foundation
import TestSupport
import Testing

@testable import ChangeLog

/// The seq map mirrors the cursor and the identities of the streams it belongs to, in HarmonyLite's
/// CBOR map of text to unsigned integers.
@Test func seqMapKeepsTheStreamIdentitiesApartFromTheCursor() throws {
    let directory = try TemporaryDirectory()
    let path = directory.path + "/seq-map.cbor"
    try SeqMapFile.write(["harmonylite-changes-1": 41, "harmonylite-changes-2": 7], streams: ["harmonylite-changes-1": 1_763_000_000_123_456_789], to: path)
    #expect(try SeqMapFile.read(path) == ["harmonylite-changes-1": 41, "harmonylite-changes-2": 7])
    let both = try #require(try SeqMapFile.readWithStreams(path))
    #expect(both.cursor == ["harmonylite-changes-1": 41, "harmonylite-changes-2": 7])
    #expect(both.streams == ["harmonylite-changes-1": 1_763_000_000_123_456_789])
    // A map written without identities (HarmonyLite's, or an earlier version's) reads as before.
    try SeqMapFile.write(["harmonylite-changes-1": 3], to: path)
    #expect(try SeqMapFile.readWithStreams(path).map { $0.streams.isEmpty && $0.cursor == ["harmonylite-changes-1": 3] } == true)
}
