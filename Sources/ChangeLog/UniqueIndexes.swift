import SQLiteKit

/// A table's UNIQUE indexes as SQLite itself defines them — other than its primary key —, read from
/// `PRAGMA index_list`/`index_xinfo` and the `CREATE INDEX` text in `sqlite_schema`: each key term (a column
/// or an expression) with the collation the index compares it by, and the partial index's `WHERE`. The
/// applier finds the rows that hold a value an incoming row wants through these definitions, so a partial
/// index never names a row outside its `WHERE`, a `COLLATE NOCASE` index finds 'U@x' for 'u@x', an
/// expression index compares the expression, and NULLs never conflict — exactly what SQLite enforces.
public struct UniqueIndex: Equatable, Sendable {
    public struct Term: Equatable, Sendable {
        /// SQL that computes the term on a row of the table, unqualified (a quoted column name, or the
        /// index's expression as written).
        public var expression: String
        public var collation: String
    }

    public var name: String
    public var terms: [Term]
    /// The partial index's condition as written, nil for a full index.
    public var condition: String?
    /// What a person recognizes the index by: its columns, or its name when it has expressions.
    public var label: String

    /// The UNIQUE indexes of `table`, the primary key's own index left out.
    public static func of(table: String, in database: SQLiteDatabase) throws(SQLiteError) -> [UniqueIndex] {
        let q = ChangeLogSchema.quote
        var indexes: [UniqueIndex] = []
        let list = try database.prepare("SELECT name, \"unique\", origin FROM pragma_index_list(?)").all([.text(table)])
        for entry in list {
            guard case .text(let nameBytes) = entry[0], entry[1] == .integer(1), entry[2] != .text("pk") else { continue }
            let name = String(decoding: nameBytes, as: UTF8.self)
            let info = try database.prepare("SELECT cid, name, coll FROM pragma_index_xinfo(?) WHERE key = 1 ORDER BY seqno").all([.text(name)])
            let sql = try database.prepare("SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?").all([.text(name)]).first?.first
            var definition: IndexDefinition?
            if case .text(let text)? = sql { definition = IndexDefinition(parsing: String(decoding: text, as: UTF8.self)) }
            var terms: [Term] = []
            var labels: [String] = []
            var usable = true
            for (position, column) in info.enumerated() {
                let collation: String
                if case .text(let bytes) = column[2] { collation = String(decoding: bytes, as: UTF8.self) } else { collation = "BINARY" }
                if case .integer(let cid) = column[0], cid >= 0, case .text(let columnName) = column[1] {
                    let name = String(decoding: columnName, as: UTF8.self)
                    terms.append(Term(expression: q(name), collation: collation))
                    labels.append(name)
                } else if let definition, position < definition.terms.count {
                    terms.append(Term(expression: definition.terms[position], collation: collation))
                    labels.append(definition.terms[position])
                } else {
                    usable = false  // an expression whose text could not be read: SQLite's refusal still protects the row
                }
            }
            guard usable, !terms.isEmpty else { continue }
            let hasExpression = info.contains { $0[0] == .integer(-2) }
            indexes.append(
                UniqueIndex(
                    name: name, terms: terms, condition: definition?.condition,
                    label: hasExpression ? name : labels.joined(separator: ", ")))
        }
        return indexes.sorted { $0.name < $1.name }
    }

    /// SQL selecting the primary key of every row of `table` (other than the one whose key is bound to the
    /// first `keyNames.count` parameters) that holds the value this index gives the single row of `probe`
    /// (a temporary table with the same column names): the terms compared under the index's collations,
    /// both rows inside a partial index's `WHERE`. A NULL term never matches (NULLs are distinct in SQLite).
    func holdersQuery(table: String, keyNames: [String], probe: String) -> String {
        let q = ChangeLogSchema.quote
        var conditions = ["NOT (" + keyNames.map { "\(q($0)) IS ?" }.joined(separator: " AND ") + ")"]
        for term in terms {
            conditions.append("(\(term.expression)) = (SELECT \(term.expression) FROM temp.\(q(probe))) COLLATE \(q(term.collation))")
        }
        if let condition {
            conditions.append("(\(condition))")
            conditions.append("EXISTS (SELECT 1 FROM temp.\(q(probe)) WHERE \(condition))")
        }
        return "SELECT \(keyNames.map(q).joined(separator: ", ")) FROM main.\(q(table)) WHERE " + conditions.joined(separator: " AND ")
    }
}

/// The parts of a `CREATE [UNIQUE] INDEX … ON t (term, …) [WHERE condition]` statement the applier needs:
/// the key terms' text (without their `COLLATE` and `ASC`/`DESC`) and the condition. Quotes, brackets and
/// nested parentheses are respected; text it cannot split gives no definition.
struct IndexDefinition: Equatable {
    var terms: [String]
    var condition: String?

    init(terms: [String], condition: String?) {
        self.terms = terms
        self.condition = condition
    }

    init?(parsing text: String) {
        // SQLite keeps comments in the text it stores; they must not cut a term or a condition short.
        let sql = Self.strippingComments(text)
        let characters = Array(sql)
        var depth = 0
        var quote: Character?
        var start: Int?
        var end: Int?
        var splits: [Int] = []
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if let open = quote {
                let close: Character = open == "[" ? "]" : open
                if character == close {
                    if close != "]", index + 1 < characters.count, characters[index + 1] == close { index += 1 } else { quote = nil }
                }
            } else if character == "'" || character == "\"" || character == "`" || character == "[" {
                quote = character
            } else if character == "(" {
                depth += 1
                if depth == 1, start == nil { start = index }
            } else if character == ")" {
                depth -= 1
                if depth == 0, start != nil, end == nil { end = index; break }
                if depth < 0 { return nil }
            } else if character == ",", depth == 1, start != nil {
                splits.append(index)
            }
            index += 1
        }
        guard let start, let end else { return nil }
        var terms: [String] = []
        var from = start + 1
        for split in splits + [end] {
            let term = Self.strippingOrderAndCollation(String(characters[from..<split]))
            guard !term.isEmpty else { return nil }
            terms.append(term)
            from = split + 1
        }
        self.terms = terms
        let rest = String(characters[(end + 1)...]).trimmed
        if rest.isEmpty {
            condition = nil
        } else if rest.count > 5, rest.prefix(5).uppercased() == "WHERE", rest.dropFirst(5).first?.isWhitespace == true {
            condition = String(rest.dropFirst(5)).trimmed
        } else {
            return nil
        }
    }

    /// `sql` with every comment (`-- …` to the end of its line, `/* … */`) outside quotes replaced by a space.
    static func strippingComments(_ sql: String) -> String {
        let characters = Array(sql)
        var out: [Character] = []
        var quote: Character?
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if let open = quote {
                out.append(character)
                if character == (open == "[" ? "]" : open) { quote = nil }
                index += 1
            } else if character == "'" || character == "\"" || character == "`" || character == "[" {
                quote = character
                out.append(character)
                index += 1
            } else if character == "-", index + 1 < characters.count, characters[index + 1] == "-" {
                while index < characters.count, characters[index] != "\n" { index += 1 }
                out.append(" ")
            } else if character == "/", index + 1 < characters.count, characters[index + 1] == "*" {
                index += 2
                while index < characters.count, !(characters[index] == "*" && index + 1 < characters.count && characters[index + 1] == "/") { index += 1 }
                index += 2
                out.append(" ")
            } else {
                out.append(character)
                index += 1
            }
        }
        return String(out)
    }

    /// The part of a `CREATE TABLE name …` statement from its column list on (`(…) [WITHOUT ROWID] [STRICT]`):
    /// what a copy of the table under another name is created from. Nil for text without a column list.
    static func tableBody(_ sql: String) -> String? {
        let characters = Array(sql)
        var quote: Character?
        for (index, character) in characters.enumerated() {
            if let open = quote {
                if character == (open == "[" ? "]" : open) { quote = nil }
            } else if character == "'" || character == "\"" || character == "`" || character == "[" {
                quote = character
            } else if character == "(" {
                return String(characters[index...])
            }
        }
        return nil
    }

    /// `lower(name) COLLATE NOCASE DESC` → `lower(name)`: the trailing keywords at the term's top level.
    static func strippingOrderAndCollation(_ term: String) -> String {
        var text = term.trimmed
        for suffix in ["ASC", "DESC"] {
            if text.uppercased().hasSuffix(" " + suffix) { text = String(text.dropLast(suffix.count)).trimmed }
        }
        // The last top-level COLLATE (outside quotes and parentheses) starts the collation clause.
        let characters = Array(text)
        var depth = 0
        var quote: Character?
        var cut: Int?
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if let open = quote {
                if character == (open == "[" ? "]" : open) { quote = nil }
            } else if character == "'" || character == "\"" || character == "`" || character == "[" {
                quote = character
            } else if character == "(" {
                depth += 1
            } else if character == ")" {
                depth -= 1
            } else if depth == 0, index + 7 <= characters.count, String(characters[index..<index + 7]).uppercased() == "COLLATE",
                index == 0 || characters[index - 1].isWhitespace || characters[index - 1] == ")" || characters[index - 1] == "\"",
                index + 7 == characters.count || characters[index + 7].isWhitespace || characters[index + 7] == "\""
            {
                cut = index
            }
            index += 1
        }
        if let cut { text = String(characters[..<cut]).trimmed }
        return text
    }
}

extension String {
    var trimmed: String {
        var slice = Substring(self)
        while slice.first?.isWhitespace == true { slice = slice.dropFirst() }
        while slice.last?.isWhitespace == true { slice = slice.dropLast() }
        return String(slice)
    }
}
