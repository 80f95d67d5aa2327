import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Masks credentials in any text before it reaches a log line: the registered secret values of this
/// process's configuration wherever they appear, the password of every `scheme://user:password@` URL, and
/// the value of every `name=value` or JSON `"name":"value"` whose name says it is a credential
/// (`secret`, `password`, `token`, …), every occurrence, any case. Every pass works on the text's bytes,
/// converted once: this runs on every field of every log line.
public enum SecretRedaction {
    public static let mask = "<redacted>"
    static let maskBytes = Array(mask.utf8)
    public static let secretNames: Set<String> = [
        "secret", "password", "passwd", "pass", "pwd", "token", "auth_token", "session_token", "access_key", "secret_key",
        "user_password", "signature", "x-amz-signature", "x-amz-security-token", "x-amz-credential", "seed", "nkey_seed",
    ]
    static let longestSecretName = secretNames.map(\.utf8.count).max()!
    /// Longest first, so a secret containing another is masked whole.
    private static let registered = Mutex<[[UInt8]]>([])

    /// Values masked wherever they appear (passwords, tokens, seeds of this process's configuration).
    /// Values shorter than 4 bytes are left to the patterns: masking every "a" would wreck every line.
    public static func register(_ values: [String]) {
        let fresh = values.map { Array($0.utf8) }.filter { $0.count >= 4 }
        registered.withLock { $0 = Array(Set($0 + fresh)).sorted { $0.count > $1.count } }
    }

    public static func redact(_ text: String) -> String {
        var bytes = Array(text.utf8)
        for value in registered.withLock({ $0 }) { maskAll(value, in: &bytes) }
        redactURLPasswords(&bytes)
        redactParameters(&bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `bytes` without a tail that starts a registered secret: what is left of a secret the text was cut
    /// through, which `redact` cannot recognise any more.
    static func droppingPartialSecret(_ bytes: [UInt8]) -> [UInt8] {
        var longest = 0
        for value in registered.withLock({ $0 }) {
            for length in stride(from: min(value.count - 1, bytes.count), to: longest, by: -1)
            where bytes[(bytes.count - length)...].elementsEqual(value[..<length]) {
                longest = length
                break
            }
        }
        return Array(bytes.dropLast(longest))
    }

    /// Every occurrence of `value` in `bytes` replaced by the mask (compared as bytes, not Characters).
    static func maskAll(_ value: [UInt8], in bytes: inout [UInt8]) {
        var from = 0
        while let at = firstIndex(of: value, in: bytes, from: from) {
            bytes.replaceSubrange(at..<at + value.count, with: maskBytes)
            from = at + maskBytes.count
        }
    }

    static func firstIndex(of value: [UInt8], in bytes: [UInt8], from: Int) -> Int? {
        guard let first = value.first, from + value.count <= bytes.count else { return nil }
        return bytes.withUnsafeBufferPointer { haystack in
            value.withUnsafeBufferPointer { needle in
                for at in from...(haystack.count - needle.count)
                where haystack[at] == first && memcmp(haystack.baseAddress! + at, needle.baseAddress!, needle.count) == 0 {
                    return at
                }
                return nil
            }
        }
    }

    public static func redactURLPasswords(_ text: String) -> String {
        var bytes = Array(text.utf8)
        redactURLPasswords(&bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func redactParameters(_ text: String) -> String {
        var bytes = Array(text.utf8)
        redactParameters(&bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `scheme://user:password@host` → `scheme://user:<redacted>@host`, for every URL in the text.
    static func redactURLPasswords(_ bytes: inout [UInt8]) {
        var index = 0
        while index + 3 <= bytes.count {
            guard bytes[index] == UInt8(ascii: ":"), bytes[index + 1] == UInt8(ascii: "/"), bytes[index + 2] == UInt8(ascii: "/") else {
                index += 1
                continue
            }
            let start = index + 3
            var end = start
            while end < bytes.count, !Self.endsAuthority(bytes[end]) { end += 1 }
            if let at = bytes[start..<end].lastIndex(of: UInt8(ascii: "@")), let colon = bytes[start..<at].firstIndex(of: UInt8(ascii: ":")) {
                bytes.replaceSubrange(colon + 1..<at, with: maskBytes)
                index = colon + 1 + mask.utf8.count
            } else {
                index = start
            }
        }
    }

    /// The value of every `name=value` (after `?`, `&`, `;`, whitespace, a quote or the start) and every
    /// JSON `"name":"value"` whose name is in `secretNames`.
    static func redactParameters(_ bytes: inout [UInt8]) {
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "=") || byte == UInt8(ascii: ":") else { index += 1; continue }
            // JSON: "name":"value" — the name is quoted, and so is the value.
            let json = byte == UInt8(ascii: ":") && index > 0 && bytes[index - 1] == UInt8(ascii: "\"")
            guard byte == UInt8(ascii: "=") || json else { index += 1; continue }
            let nameEnd = json ? index - 1 : index
            var start = nameEnd
            while start > 0, !Self.endsName(bytes[start - 1]) { start -= 1 }
            // Most `=` name no credential: only a name as long as one is made into a String.
            guard nameEnd - start <= Self.longestSecretName else { index += 1; continue }
            let name = String(decoding: bytes[start..<nameEnd], as: UTF8.self).lowercased()
            var valueStart = index + 1
            if json {
                while valueStart < bytes.count, bytes[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
                guard valueStart < bytes.count, bytes[valueStart] == UInt8(ascii: "\"") else { index += 1; continue }
                valueStart += 1
            }
            var end = valueStart
            if json {
                while end < bytes.count, bytes[end] != UInt8(ascii: "\"") { end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1 }
                end = min(end, bytes.count)
            } else {
                while end < bytes.count, !Self.endsValue(bytes[end]) { end += 1 }
            }
            if secretNames.contains(name), end > valueStart {
                bytes.replaceSubrange(valueStart..<end, with: maskBytes)
                index = valueStart + mask.utf8.count
            } else {
                index += 1
            }
        }
    }

    private static func endsAuthority(_ byte: UInt8) -> Bool { "/?# \t\r\n\"'<>,;".utf8.contains(byte) }
    private static func endsName(_ byte: UInt8) -> Bool { "?&; \t\r\n\"'{},".utf8.contains(byte) }
    private static func endsValue(_ byte: UInt8) -> Bool { "&; \t\r\n\"',}".utf8.contains(byte) }
}

/// Strips passwords from URLs (`scheme://user:secret@host`, `?secret=`, `&password=`, … every occurrence)
/// before they reach a log line or an error message.
public enum URLRedaction {
    public static func redact(_ url: String) -> String { SecretRedaction.redactParameters(SecretRedaction.redactURLPasswords(url)) }
}
