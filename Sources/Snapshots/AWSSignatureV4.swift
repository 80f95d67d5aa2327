import Digests
import Foundation

/// AWS Signature Version 4 for S3 requests, as a pure function of the request, the credentials and the
/// time (tested against AWS's published example). The payload is declared `UNSIGNED-PAYLOAD`, so a file
/// can be streamed without reading it twice; S3 and S3-compatible servers accept that.
public struct AWSSignatureV4 {
    public var accessKey: String
    public var secretKey: String
    public var sessionToken: String
    public var region: String
    public var service = "s3"

    public init(accessKey: String, secretKey: String, sessionToken: String = "", region: String) {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.sessionToken = sessionToken
        self.region = region
    }

    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    /// The headers to send: the given ones plus `x-amz-date`, `x-amz-content-sha256`, the session token if
    /// any, and `Authorization`. `path` is the URI-encoded path, `query` the canonical query string.
    public func sign(
        method: String, host: String, path: String, query: String = "", headers: [String: String] = [:],
        payloadHash: String = unsignedPayload, date: Date
    ) -> [String: String] {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let timestamp = formatter.string(from: date)
        let day = String(timestamp.prefix(8))
        var all = headers
        all["host"] = host
        all["x-amz-date"] = timestamp
        all["x-amz-content-sha256"] = payloadHash
        if !sessionToken.isEmpty { all["x-amz-security-token"] = sessionToken }
        let canonical = Dictionary(all.map { ($0.key.lowercased(), $0.value.trimmingCharacters(in: .whitespaces)) }, uniquingKeysWith: { $1 })
        let names = canonical.keys.sorted()
        let signedHeaders = names.joined(separator: ";")
        let canonicalRequest = [method, path, query, names.map { "\($0):\(canonical[$0]!)\n" }.joined(), signedHeaders, payloadHash]
            .joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", timestamp, scope, sha256(Array(canonicalRequest.utf8)).hex].joined(separator: "\n")
        var key = hmacSHA256(key: Array("AWS4\(secretKey)".utf8), Array(day.utf8))
        for part in [region, service, "aws4_request"] { key = hmacSHA256(key: key, Array(part.utf8)) }
        let signature = hmacSHA256(key: key, Array(stringToSign.utf8)).hex
        all["Authorization"] = "AWS4-HMAC-SHA256 Credential=\(accessKey)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        all.removeValue(forKey: "host")  // libcurl sends Host itself
        return all
    }

    /// Percent-encodes a path for the canonical request and the URL: everything but unreserved characters
    /// and "/".
    public static func encodePath(_ path: String) -> String {
        let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/")
        return path.addingPercentEncoding(withAllowedCharacters: allowed) ?? path
    }
}
