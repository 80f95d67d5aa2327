import Foundation

extension Configuration {
    /// The bytes the supervisor puts in the handshake's `welcome`. JSON, because it travels once per worker
    /// start and Codable keeps a single definition of every field; hot paths use the binary encodings.
    public func encodedForWorkers() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Array((try? encoder.encode(self)) ?? Data())
    }

    public init(fromWorkerHandshake bytes: [UInt8]) throws {
        self = try JSONDecoder().decode(Configuration.self, from: Data(bytes))
    }

    /// A copy safe to log: passwords, secrets and tokens replaced.
    public var redacted: Configuration {
        var copy = self
        let mask = { (value: inout String) in if !value.isEmpty { value = "<redacted>" } }
        mask(&copy.nats.userPassword)
        mask(&copy.snapshot.s3.secret)
        mask(&copy.snapshot.s3.sessionToken)
        copy.snapshot.webdav.url = URLRedaction.redact(copy.snapshot.webdav.url)
        copy.snapshot.sftp.url = URLRedaction.redact(copy.snapshot.sftp.url)
        copy.nats.urls = copy.nats.urls.map(URLRedaction.redact)
        return copy
    }
}

/// Strips passwords from URLs (`scheme://user:secret@host`, `?secret=`) before they reach a log line.
public enum URLRedaction {
    public static func redact(_ url: String) -> String {
        var result = url
        if let scheme = result.range(of: "://"), let at = result[scheme.upperBound...].firstIndex(of: "@") {
            let credentials = result[scheme.upperBound..<at]
            if let colon = credentials.firstIndex(of: ":") {
                result.replaceSubrange(result.index(after: colon)..<at, with: "<redacted>")
            }
        }
        return redactParameters(result)
    }

    /// Query parameters whose value is a credential, wherever they appear (every occurrence, any case).
    public static let secretParameters = ["secret", "password", "passwd", "pass", "token", "session_token", "access_key", "secret_key", "signature", "x-amz-signature", "x-amz-security-token"]

    /// Replaces the value of every `name=` in `secretParameters` (after `?`, `&`, `;`, a space or the start)
    /// up to the next `&`, `;`, whitespace or quote.
    public static func redactParameters(_ text: String) -> String {
        var bytes = Array(text.utf8)
        var index = 0
        let separators = Set("&; \t\r\n\"'".utf8)
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "=") else { index += 1; continue }
            var start = index
            while start > 0, !separators.contains(bytes[start - 1]), bytes[start - 1] != UInt8(ascii: "?") { start -= 1 }
            let name = String(decoding: bytes[start..<index], as: UTF8.self).lowercased()
            var end = index + 1
            while end < bytes.count, !separators.contains(bytes[end]) { end += 1 }
            if secretParameters.contains(name), end > index + 1 {
                bytes.replaceSubrange(index + 1..<end, with: Array("<redacted>".utf8))
                index += 1 + "<redacted>".utf8.count
            } else {
                index = end
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
