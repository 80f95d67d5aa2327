import ChangeEvents
import Logging
import Testing

@testable import Logs

/// nats-server's lines as the supervisor reads them from its pipe: every fixture below is a line nats-server
/// 2.9.10 (Debian bookworm's) wrote, copied from its output.
@Suite struct NATSServerLogLineTests {
    @Test func everyTagIsParsedWithItsPidAndTime() throws {
        let line = NATSServerLogLine(Array("[30339] 2026/12/07 12:51:17.739302 [INF] Starting nats-server".utf8))
        #expect(line.tag == .INF && line.pid == 30339 && line.text == "Starting nats-server")
        #expect(line.time == .init(year: 2026, month: 12, day: 7, hour: 12, minute: 51, second: 17, microsecond: 739_302))
        #expect(line.level == .info && !line.isFailure)

        let cases: [(String, NATSServerLogLine.Tag, Logger.Level, String)] = [
            (
                "[30874] 2026/12/07 12:51:29.791246 [WRN] Plaintext passwords detected, use nkeys or bcrypt", .WRN, .warning,
                "Plaintext passwords detected, use nkeys or bcrypt"
            ),
            (
                "[30874] 2026/12/07 12:51:31.072706 [ERR] 127.0.0.1:49928 - cid:4 - authentication error", .ERR, .error,
                "127.0.0.1:49928 - cid:4 - authentication error"
            ),
            (
                "[30410] 2026/12/07 12:51:19.250382 [FTL] Error listening on port: 0.0.0.0:45222, \"listen tcp 0.0.0.0:45222: bind: address already in use\"",
                .FTL, .critical, "Error listening on port: 0.0.0.0:45222, \"listen tcp 0.0.0.0:45222: bind: address already in use\""
            ),
            ("[30339] 2026/12/07 12:51:17.739380 [DBG] Created system account: \"$SYS\"", .DBG, .debug, "Created system account: \"$SYS\""),
            (
                "[30874] 2026/12/07 12:51:31.072769 [TRC] 127.0.0.1:49928 - cid:4 - ->> [-ERR Authorization Violation]", .TRC, .trace,
                "127.0.0.1:49928 - cid:4 - ->> [-ERR Authorization Violation]"
            ),
            ("[30339] 2026/12/07 12:51:17.740335 [INF] ", .INF, .info, ""),
            ("[30339] 2026/12/07 12:51:17.739361 [INF]   Version:  2.9.10", .INF, .info, "  Version:  2.9.10"),
        ]
        for (text, tag, level, message) in cases {
            let parsed = NATSServerLogLine(Array(text.utf8))
            #expect(parsed.tag == tag && parsed.level == level && parsed.text == message, "\(text)")
        }
        #expect(NATSServerLogLine(Array(cases[2].0.utf8)).isFailure && NATSServerLogLine(Array(cases[1].0.utf8)).isFailure)
    }

    @Test func aLineWithoutTimeOrOfAnotherShapeIsKeptWhole() {
        // logtime off: `[pid] [INF] text`.
        let untimed = NATSServerLogLine(Array("[7] [WRN] no time".utf8))
        #expect(untimed.tag == .WRN && untimed.time == nil && untimed.text == "no time")
        // What nats-server prints before its logger exists (a missing config file), and junk.
        let early = NATSServerLogLine(Array("nats-server: open /nonexistent: no such file or directory".utf8))
        #expect(early.tag == nil && early.level == .error && early.text == "nats-server: open /nonexistent: no such file or directory")
        for junk in [
            "[30339] 2026/13/07 12:51:17.739302 [INF] month 13", "[30339] 2026/12/07 12:51:17.739302 [XYZ] tag", "[abc] [INF] x",
            "[30339] 2026/12/07 12:51:17.7393 [INF] short micro", "", "[",
        ] {
            let parsed = NATSServerLogLine(Array(junk.utf8))
            #expect(parsed.tag == nil && parsed.text == junk && parsed.level == .info, "\(junk)")
        }
        let invalid = NATSServerLogLine([0x5B, 0x31, 0x5D, 0x20, 0x5B, 0x49, 0x4E, 0x46, 0x5D, 0x20, 0xFF, 0xFE, 0x0D])
        #expect(invalid.tag == .INF && invalid.text == "\u{FFFD}\u{FFFD}")
    }

    @Test func linesAreBoundedAndSplitAcrossReads() {
        var splitter = LineSplitter(limit: 16)
        #expect(splitter.feed(Array("[1] [INF] a\n[1] [E".utf8)).map { String(decoding: $0, as: UTF8.self) } == ["[1] [INF] a"])
        #expect(splitter.feed(Array("RR] b\n".utf8)).map { String(decoding: $0, as: UTF8.self) } == ["[1] [ERR] b"])
        // A line past the limit is cut there and the rest dropped up to its newline.
        let long = splitter.feed(Array(String(repeating: "x", count: 40).utf8) + Array("\nnext\n".utf8))
        #expect(long.map { String(decoding: $0, as: UTF8.self) } == [String(repeating: "x", count: 16), "next"])
        #expect(splitter.feed(Array("tail".utf8)).isEmpty)
        #expect(splitter.finish().map { String(decoding: $0, as: UTF8.self) } == "tail")
        #expect(splitter.finish() == nil)
        #expect(NATSServerLogLine(Array(repeating: UInt8(ascii: "y"), count: 100_000)).text.utf8.count == NATSServerLogLine.maximumBytes)
    }

    @Test func timesAreRFC3339InUTC() {
        #expect(LineLogHandler.rfc3339(unixMilliseconds: 1_796_610_877_969) == "2026-12-07T02:34:37.969Z")
        #expect(LineLogHandler.rfc3339(unixMilliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(LineLogHandler.rfc3339(unixMilliseconds: -1) == "1969-12-31T23:59:59.999Z")
        let local = NATSServerLogLine.LocalTime(year: 2026, month: 12, day: 7, hour: 12, minute: 51, second: 17, microsecond: 739_302)
        #expect(LineLogHandler.timestamp(local).hasSuffix(":51:17.739Z"))
    }

    @Test func cursorsReadAsStreamEqualsSequence() {
        #expect(describeCursor(["harmonylite-changes-2": 4, "harmonylite-changes-1": 11]) == "harmonylite-changes-1=11 harmonylite-changes-2=4")
        #expect(describeCursor([:]) == "none")
    }
}
