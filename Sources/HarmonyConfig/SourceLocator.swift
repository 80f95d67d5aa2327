/// Finds the line of a key in TOML text, for error messages (TOMLKit does not expose source positions of
/// values). Understands `[table]` headers and `key = ...` lines, which is how configuration files are
/// written; returns nil for anything it cannot place.
enum SourceLocator {
    static func line(of dottedKey: String, in text: String) -> Int? {
        let parts = dottedKey.split(separator: ".").map(String.init)
        guard let key = parts.last else { return nil }
        let table = parts.dropLast().joined(separator: ".")
        var currentTable = ""
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.trimmingSpaces()
            if line.hasPrefix("[") {
                let header = line.drop(while: { $0 == "[" }).prefix(while: { $0 != "]" })
                currentTable = header.split(separator: ".").map { unquote($0.trimmingSpaces()) }.joined(separator: ".")
                if currentTable == dottedKey { return lineNumber }
                continue
            }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let lhs = line[..<equals].trimmingSpaces()
            let lhsPath = lhs.split(separator: ".").map { unquote($0.trimmingSpaces()) }
            let fullPath = (currentTable.isEmpty ? [] : currentTable.split(separator: ".").map(String.init)) + lhsPath
            if fullPath == parts || (currentTable == table && lhsPath == [key]) { return lineNumber }
        }
        return nil
    }

    private static func unquote(_ s: Substring) -> String {
        var s = s
        if s.count >= 2, let first = s.first, first == "\"" || first == "'", s.last == first {
            s = s.dropFirst().dropLast()
        }
        return String(s)
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" || c == "\r" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\r" { s = s.dropLast() }
        return s
    }
}
