import Testing

@testable import Logs

/// What the supervisor does with a line from a worker's pipe: its own lines pass through, others are foreign.
@Suite struct WorkerOutputLineTests {
    static func line(_ text: String, json: Bool, cut: Bool = false) -> WorkerOutputLine { WorkerOutputLine(Array(text.utf8), json: json, cut: cut) }

    @Test func ourOwnLinesPassThroughUnchanged() {
        let json = #"{"time":"2026-12-07T12:51:17.739Z","level":"info","node_id":1,"process":"capturer","pid":7,"message":"ready"}"#
        #expect(Self.line(json, json: true) == .ours(Array(json.utf8)))
        #expect(Self.line("<6>" + json, json: true) == .ours(Array(("<6>" + json).utf8)))
        let console = "2026-12-07T12:51:17.739Z INF [capturer] ready table=kv"
        #expect(Self.line(console, json: false) == .ours(Array(console.utf8)))
        #expect(Self.line("<3>ERR [applier] cannot apply", json: false) == .ours(Array("<3>ERR [applier] cannot apply".utf8)))
    }

    @Test func aCrashReportIsForeign() {
        for text in [
            "*** Signal 11: Backtracing from 0x7f3c0731a230... done ***", "*** Program crashed: Bad pointer dereference at 0x0 ***",
            "Thread 0 \"harmonylite-cap\" crashed:", "rax 0x0000000000000000  0", "Fatal error: Unexpectedly found nil",
        ] {
            #expect(Self.line(text, json: true) == .foreign(text))
            #expect(Self.line(text, json: false) == .foreign(text))
        }
        // A line of the other format is not ours: under json every line must be an object.
        #expect(Self.line("2026-12-07T12:51:17.739Z INF [capturer] ready", json: true) == .foreign("2026-12-07T12:51:17.739Z INF [capturer] ready"))
        #expect(Self.line(#"{"time":"x","level":"info"}"#, json: false) == .foreign(#"{"time":"x","level":"info"}"#))
        // Looks like ours but not closed, or cut by the splitter: foreign.
        #expect(Self.line(#"{"time":"2026"#, json: true) == .foreign(#"{"time":"2026"#))
        #expect(Self.line(#"{"time":"a"}"#, json: true, cut: true) == .foreign(#"{"time":"a"}"#))
        #expect(Self.line("<9>INF [capturer] x", json: false) == .foreign("<9>INF [capturer] x"))
    }

    @Test func aForeignLineIsBoundedAndNeverInvalidUTF8() {
        let long = String(repeating: "x", count: 100_000)
        guard case .foreign(let text) = Self.line(long, json: true) else { Issue.record("not foreign"); return }
        #expect(text.utf8.count == WorkerOutputLine.maximumForeignBytes)
        guard case .foreign(let bad) = WorkerOutputLine([0x2A, 0xFF, 0xFE, 0x2A], json: true) else { Issue.record("not foreign"); return }
        #expect(bad == "*\u{FFFD}\u{FFFD}*")
    }

    @Test func theLineSayingWhyIsRecognised() {
        #expect(WorkerOutputLine.saysWhy("*** Program crashed: Bad pointer dereference at 0x0 ***"))
        #expect(WorkerOutputLine.saysWhy("Fatal error: Unexpectedly found nil while unwrapping an Optional value"))
        #expect(!WorkerOutputLine.saysWhy("Backtrace took 0.33s"))
    }
}
