import Testing

@testable import Logs

/// A console line is one line whatever the text it carries: a table name is the application's to choose.
@Suite struct OneLineTests {
    @Test func aNewlineInATableNameCannotStartALineThatReadsAsAnotherProcesss() {
        let name = "T1\n2026-12-07T16:00:00.000Z ERR [supervisor] child refused the start note=FORGED"
        let line = LineLogHandler.oneLine(name)
        #expect(!line.contains("\n") && line.hasPrefix("T1\\n2026-12-07T16:00:00.000Z ERR [supervisor]"), "\(line)")
        // Seen by the supervisor as one line of the worker's, not as a line of its own.
        #expect(WorkerOutputLine.isOurs(Array(("2026-12-07T16:48:13.686Z WRN [capturer] " + line).utf8), json: false))
        #expect(!line.split(separator: "\n").dropFirst().contains { WorkerOutputLine.isOurs(Array($0.utf8), json: false) })
    }

    @Test func everyControlCharacterIsEscapedAndOtherTextKept() {
        #expect(LineLogHandler.oneLine("a\rb\tc\u{1B}[31md\u{7F}") == "a\\rb\\tc\\u{1B}[31md\\u{7F}")
        #expect(LineLogHandler.oneLine("plain text, ünïcode ✓") == "plain text, ünïcode ✓")
        #expect(LineLogHandler.oneLine("") == "")
    }
}
