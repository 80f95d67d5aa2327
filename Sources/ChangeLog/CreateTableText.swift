/// The `CREATE TABLE` text SQLite keeps in `sqlite_schema`, read as tokens: what `ColumnHistory` compares
/// between two looks. SQLite edits this text in place for each ALTER TABLE: `RENAME COLUMN` replaces every
/// token naming the column by the new name (bare as typed, or as `"new"` where the old token was quoted),
/// `DROP COLUMN` cuts the column's definition out, `ADD COLUMN` appends `, <definition>` after the last one.
/// Total over any text: what it cannot structure it leaves without definitions.
struct CreateTableText: Equatable {
    struct Token: Equatable {
        /// `word`: a bare word (a name or a keyword); `name`: a quoted name; `string`: a '…' literal (SQLite
        /// takes one for a name where a name is due).
        enum Kind: Equatable { case word, name, string, other }
        var kind: Kind
        /// A name's or string's value, unquoted and lowercased (SQLite's names are ASCII case-insensitive);
        /// other tokens as written.
        var value: String
        var isName: Bool { kind != .other }
    }

    /// A column definition or a table constraint: the range of its tokens.
    struct Element: Equatable {
        var range: Range<Int>
        /// The column's name (normalized) for a column definition; nil for a table constraint.
        var column: String?
    }

    let tokens: [Token]
    let elements: [Element]

    init(_ sql: String) {
        tokens = Self.tokenize(Array(sql.utf8))
        elements = Self.structure(tokens)
    }

    static func normalized(_ name: String) -> String { asciiLowercased(name) }

    /// The definition of `column` (normalized name), if the text has one.
    func definition(of column: String) -> Element? { elements.first { $0.column == column } }

    /// Whether `column`, which `after` (the same tokens up to names) calls `new`, can be neither dropped nor
    /// added by ALTER TABLE, so that no history of drops and adds can stand for its rename: it is (part of)
    /// the PRIMARY KEY or UNIQUE, or named outside its own definition (table constraints, other columns'
    /// CHECK or generated expressions) where `after` names it `new` too, all of which make SQLite refuse
    /// `DROP COLUMN`, and `ADD COLUMN` takes none of them. (A token that spells the name but stayed — a
    /// type, another table's column in REFERENCES — is not it.)
    func isFixed(_ column: String, renamedTo new: String, in after: CreateTableText) -> Bool {
        guard let own = definition(of: column), after.tokens.count == tokens.count else { return false }
        for index in own.range.dropFirst() where tokens[index].kind == .word {
            if ["primary", "unique"].contains(tokens[index].value) { return true }
        }
        return tokens.indices.contains { index in
            !own.range.contains(index) && isInsideParentheses(index) && tokens[index].isName && tokens[index].value == column
                && after.tokens[index].isName && after.tokens[index].value == new
        }
    }

    private func isInsideParentheses(_ index: Int) -> Bool {
        guard let first = elements.first?.range.lowerBound, let last = elements.last?.range.upperBound else { return false }
        return (first..<last).contains(index)
    }

    /// The tokens of a column's definition after its name, with every name in `placeholders` replaced by one
    /// marker: what a rename of it (or of the columns it names) leaves as it was.
    func body(of column: String, placeholders: Set<String>) -> [Token]? {
        guard let element = definition(of: column) else { return nil }
        return tokens[element.range].dropFirst().map { token in
            token.isName && placeholders.contains(token.value) ? Token(kind: .name, value: "\u{0}") : token
        }
    }

    /// When `after` differs from `self` only in names — position by position, where a name changed it always
    /// became the same new one, and no two names became the same — those replacements (old → new,
    /// normalized); nil otherwise.
    func substitutions(to after: CreateTableText) -> [String: String]? {
        guard tokens.count == after.tokens.count else { return nil }
        var forward: [String: String] = [:]
        var backward: [String: String] = [:]
        for (old, new) in zip(tokens, after.tokens) where old != new {
            // (A token left as it was may still spell a renamed name: a type or keyword, not the column.)
            guard old.isName && new.isName else { return nil }
            if let mapped = forward[old.value], mapped != new.value { return nil }
            if let mapped = backward[new.value], mapped != old.value { return nil }
            forward[old.value] = new.value
            backward[new.value] = old.value
        }
        return forward
    }

    // MARK: Reading the text

    private static func tokenize(_ bytes: [UInt8]) -> [Token] {
        var tokens: [Token] = []
        var index = 0
        func isNameByte(_ byte: UInt8) -> Bool {
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F || byte == 0x24 || byte >= 0x80
        }
        /// A quoted token from `index` (on its opening quote) to its closing one; a doubled closing quote is one.
        func quoted(close: UInt8, doubling: Bool) -> String {
            var value: [UInt8] = []
            index += 1
            while index < bytes.count {
                if bytes[index] == close {
                    if doubling, index + 1 < bytes.count, bytes[index + 1] == close {
                        value.append(close)
                        index += 2
                        continue
                    }
                    index += 1
                    break
                }
                value.append(bytes[index])
                index += 1
            }
            return String(decoding: value, as: UTF8.self)
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case 0x20, 0x09, 0x0A, 0x0D, 0x0C:
                index += 1
            case 0x2D where index + 1 < bytes.count && bytes[index + 1] == 0x2D:  // -- comment
                while index < bytes.count && bytes[index] != 0x0A { index += 1 }
            case 0x2F where index + 1 < bytes.count && bytes[index + 1] == 0x2A:  // /* comment */
                index += 2
                while index < bytes.count && !(bytes[index] == 0x2A && index + 1 < bytes.count && bytes[index + 1] == 0x2F) { index += 1 }
                index = min(bytes.count, index + 2)
            case 0x27:  // 'string'
                tokens.append(Token(kind: .string, value: asciiLowercased(quoted(close: 0x27, doubling: true))))
            case 0x22:  // "name"
                tokens.append(Token(kind: .name, value: asciiLowercased(quoted(close: 0x22, doubling: true))))
            case 0x60:  // `name`
                tokens.append(Token(kind: .name, value: asciiLowercased(quoted(close: 0x60, doubling: true))))
            case 0x5B:  // [name]
                tokens.append(Token(kind: .name, value: asciiLowercased(quoted(close: 0x5D, doubling: false))))
            default:
                if isNameByte(byte) {
                    let start = index
                    while index < bytes.count && isNameByte(bytes[index]) { index += 1 }
                    let text = String(decoding: bytes[start..<index], as: UTF8.self)
                    let isNumber = byte >= 0x30 && byte <= 0x39
                    tokens.append(Token(kind: isNumber ? .other : .word, value: isNumber ? text : asciiLowercased(text)))
                } else {
                    tokens.append(Token(kind: .other, value: String(UnicodeScalar(byte))))
                    index += 1
                }
            }
        }
        return tokens
    }

    /// The elements between the first `(` and its `)`, split at their top-level commas.
    private static func structure(_ tokens: [Token]) -> [Element] {
        guard let open = tokens.firstIndex(where: { $0.kind == .other && $0.value == "(" }) else { return [] }
        var elements: [Element] = []
        var depth = 0
        var start = open + 1
        func close(_ end: Int) {
            guard start < end else { return }
            let first = tokens[start]
            let constraintWords: Set<String> = ["constraint", "primary", "unique", "check", "foreign"]
            // A bare keyword opens a table constraint; a quoted word is a column's name whatever it says.
            let isColumn = first.kind == .name || first.kind == .string || (first.kind == .word && !constraintWords.contains(first.value))
            elements.append(Element(range: start..<end, column: isColumn ? first.value : nil))
        }
        for index in (open + 1)..<tokens.count where tokens[index].kind == .other {
            switch tokens[index].value {
            case "(": depth += 1
            case ")":
                if depth == 0 {
                    close(index)
                    return elements
                }
                depth -= 1
            case "," where depth == 0:
                close(index)
                start = index + 1
            default: break
            }
        }
        return []  // unbalanced: no structure
    }
}

func asciiLowercased(_ text: String) -> String {
    String(decoding: text.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }, as: UTF8.self)
}
