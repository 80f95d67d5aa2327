import TestSupport
import Testing

@testable import Logs

/// Console metadata are logfmt: a value with a space, a quote, `=`, a backslash or a control character is
/// quoted and escaped, so a logfmt parser reads back exactly the values written, and no value can end its
/// field early, forge another field or start a line.
@Suite struct LogfmtFieldsTests {
    @Test func plainTokensStayBareAndEverythingElseIsQuoted() {
        #expect(LineLogHandler.logfmtFields(["child": "nats", "restart": "1"]) == " child=nats restart=1")
        #expect(LineLogHandler.logfmtValue("exited with status 1") == #""exited with status 1""#)
        #expect(LineLogHandler.logfmtValue("") == #""""#)
        #expect(LineLogHandler.logfmtValue("a=b") == #""a=b""#)
        #expect(LineLogHandler.logfmtValue(#"say "hi" \ bye"#) == #""say \"hi\" \\ bye""#)
        #expect(LineLogHandler.logfmtValue("two\nlines\r\t\u{1B}\u{7F}") == #""two\nlines\r\t\u001b\u007f""#)
        #expect(LineLogHandler.logfmtValue("ünïcode✓") == "ünïcode✓")
        // A value cannot forge a field: `note=x child=forged` stays one quoted value.
        #expect(LineLogHandler.logfmtFields(["note": "x child=forged"]) == #" note="x child=forged""#)
    }

    /// Seeded strings drawn mostly from the awkward characters, printed and parsed back.
    @Test func whatIsPrintedParsesBackToTheSameValues() throws {
        var random = SplitMix64(seed: 0x10_6F47)
        let alphabet: [String] = [" ", "\"", "\\", "=", "\n", "\r", "\t", "\u{0}", "\u{1B}", "\u{7F}", "a", "Z", "0", "-", "ü", "✓", "😀", "u", "n", "k"]
        for round in 0..<5000 {
            var values: [String: String] = [:]
            for index in 0..<(1 + Int(random.next() % 4)) {
                let length = Int(random.next() % 12)
                values["k\(index)"] = (0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }.joined()
            }
            let printed = LineLogHandler.logfmtFields(values)
            #expect(!printed.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "round \(round): \(printed)")
            let parsed = try #require(Self.parseLogfmt(printed), "round \(round): \(printed)")
            #expect(parsed == values, "round \(round): \(printed)")
        }
    }

    /// A logfmt reader (as go-logfmt reads): ` key=value` pairs, a value bare up to the next space or quoted
    /// with `\"`, `\\`, `\n`, `\r`, `\t`, `\uXXXX` escapes. Nil when the text is not logfmt.
    static func parseLogfmt(_ text: String) -> [String: String]? {
        var pairs: [String: String] = [:]
        var scalars = Substring(text).unicodeScalars[...]
        while let first = scalars.first {
            guard first == " " else { return nil }
            scalars.removeFirst()
            guard let equals = scalars.firstIndex(of: "=") else { return nil }
            let key = String(String.UnicodeScalarView(scalars[..<equals]))
            scalars = scalars[scalars.index(after: equals)...]
            var value = String.UnicodeScalarView()
            if scalars.first == "\"" {
                scalars.removeFirst()
                while true {
                    guard let scalar = scalars.popFirst() else { return nil }
                    if scalar == "\"" { break }
                    guard scalar == "\\" else { value.append(scalar); continue }
                    switch scalars.popFirst() {
                    case "\"": value.append("\"")
                    case "\\": value.append("\\")
                    case "n": value.append("\n")
                    case "r": value.append("\r")
                    case "t": value.append("\t")
                    case "u":
                        let hex = String(String.UnicodeScalarView(scalars.prefix(4)))
                        guard hex.count == 4, let code = UInt32(hex, radix: 16), let decoded = Unicode.Scalar(code) else { return nil }
                        scalars = scalars.dropFirst(4)
                        value.append(decoded)
                    default: return nil
                    }
                }
            } else {
                while let scalar = scalars.first, scalar != " " {
                    guard scalar != "\"", scalar != "=" else { return nil }
                    value.append(scalar)
                    scalars.removeFirst()
                }
            }
            guard pairs.updateValue(String(value), forKey: key) == nil else { return nil }
        }
        return pairs
    }
}
