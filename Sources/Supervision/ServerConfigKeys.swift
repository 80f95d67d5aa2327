import Foundation

/// What an operator's `nats.server_config` file sets at its top level, read without nats-server: the
/// generated configuration leaves out its own value of a key the operator's file sets in another spelling.
/// (nats-server applies `http`, `monitor_port`, `http_port`, … in its map's random order: both written,
/// the monitoring port landed on the operator's 8222 in 1 of 4 starts.)
///
/// The file is hostile input as far as this scan goes: bounded (`maximumBytes`), comments and quoted
/// strings skipped, nesting counted, and a file it cannot make sense of reads as setting nothing.
public enum ServerConfigKeys {
    /// The keys that place nats-server's monitoring endpoint (lower case: nats-server ignores key case).
    public static let monitoringKeys: Set<String> = ["http", "http_port", "monitor_port", "https", "https_port"]
    public static let maximumBytes = 1 << 20

    /// The top-level keys of `text` (lower case), and the paths its top-level `include` statements name.
    public static func scan(_ text: String) -> (keys: Set<String>, includes: [String]) {
        var keys = Set<String>()
        var includes: [String] = []
        var depth = 0
        var atStatement = true
        var index = text.utf8.startIndex
        let bytes = text.utf8
        func skipLine() { while index < bytes.endIndex && bytes[index] != UInt8(ascii: "\n") { index = bytes.index(after: index) } }
        while index < bytes.endIndex {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "#"):
                skipLine()
                continue
            case UInt8(ascii: "/") where bytes.index(after: index) < bytes.endIndex && bytes[bytes.index(after: index)] == UInt8(ascii: "/"):
                skipLine()
                continue
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                // A quoted value: skip to its closing quote (a backslash escapes one byte).
                index = bytes.index(after: index)
                while index < bytes.endIndex && bytes[index] != byte {
                    if bytes[index] == UInt8(ascii: "\\") && bytes.index(after: index) < bytes.endIndex { index = bytes.index(after: index) }
                    index = bytes.index(after: index)
                }
                atStatement = false
            case UInt8(ascii: "{"), UInt8(ascii: "["), UInt8(ascii: "("):
                depth += 1
                atStatement = depth == 0
            case UInt8(ascii: "}"), UInt8(ascii: "]"), UInt8(ascii: ")"):
                depth = max(0, depth - 1)
                atStatement = depth == 0
            case UInt8(ascii: "\n"), UInt8(ascii: ","), UInt8(ascii: ";"):
                atStatement = depth == 0
            case _ where isKeyByte(byte):
                let start = index
                while index < bytes.endIndex && isKeyByte(bytes[index]) { index = bytes.index(after: index) }
                if atStatement && depth == 0 {
                    let key = String(decoding: bytes[start..<index], as: UTF8.self).lowercased()
                    if key == "include" {
                        includes.append(includePath(bytes, from: index))
                        skipLine()
                    } else {
                        keys.insert(key)
                    }
                }
                atStatement = false
                continue
            default:
                break
            }
            if index < bytes.endIndex { index = bytes.index(after: index) }
        }
        return (keys, includes.filter { !$0.isEmpty })
    }

    /// Whether the file (or a file it includes, `read` resolving a path against the including file's
    /// directory, at most `depth` levels) sets one of `monitoringKeys`.
    public static func setsMonitoring(path: String, read: (String) -> String?, depth: Int = 4) -> Bool {
        guard depth > 0, let text = read(path), text.utf8.count <= maximumBytes else { return false }
        let found = scan(text)
        if !found.keys.isDisjoint(with: monitoringKeys) { return true }
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return found.includes.contains { include in
            setsMonitoring(path: include.hasPrefix("/") ? include : directory + "/" + include, read: read, depth: depth - 1)
        }
    }

    private static func isKeyByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "$")
    }

    /// The path after `include`: quoted or bare, to the end of the line.
    private static func includePath(_ bytes: String.UTF8View, from start: String.UTF8View.Index) -> String {
        var end = start
        while end < bytes.endIndex && bytes[end] != UInt8(ascii: "\n") { end = bytes.index(after: end) }
        var text = String(decoding: bytes[start..<end], as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: " \t\r;"))
        if let quote = text.first, quote == "\"" || quote == "'" {
            text = String(text.dropFirst().prefix { $0 != quote })
        }
        return text
    }
}
