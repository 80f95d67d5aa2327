/// The one part of an HTTP/1.x request the endpoints need, read from bytes a client sent: hostile input,
/// bounded, never trusted.
public struct HTTPRequest: Equatable, Sendable {
    public var method: String
    /// The path without the query string.
    public var path: String

    public init(method: String, path: String) {
        self.method = method
        self.path = path
    }

    /// The most a request head may take; a client that sends more is answered 431 and closed.
    public static let maximumHeadBytes = 8192

    public enum Parse: Equatable, Sendable {
        /// The head is not complete yet: read more.
        case incomplete
        case request(HTTPRequest)
        case bad(status: Int, reason: String)
    }

    /// Parses a request head once it is complete (ends with an empty line).
    public static func parse(_ bytes: [UInt8]) -> Parse {
        guard let end = headEnd(bytes) else {
            return bytes.count > maximumHeadBytes ? .bad(status: 431, reason: "request head larger than \(maximumHeadBytes) bytes") : .incomplete
        }
        guard end <= maximumHeadBytes else { return .bad(status: 431, reason: "request head larger than \(maximumHeadBytes) bytes") }
        let lineEnd = bytes[..<end].firstIndex(of: 13) ?? bytes[..<end].firstIndex(of: 10) ?? end
        guard let line = String(validating: bytes[..<lineEnd], as: UTF8.self) else { return .bad(status: 400, reason: "request line is not UTF-8") }
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1."), parts[1].hasPrefix("/") else {
            return .bad(status: 400, reason: "malformed request line")
        }
        let target = parts[1]
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? "/"
        return .request(HTTPRequest(method: String(parts[0]), path: path))
    }

    /// Index just past the blank line that ends the head, if it is there.
    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == 10 && bytes[index + 1] == 10 { return index + 2 }
            if index + 3 < bytes.count && bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
                return index + 4
            }
            index += 1
        }
        return nil
    }
}

public struct HTTPResponse: Equatable, Sendable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]

    public init(status: Int, contentType: String, body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    public static func text(_ status: Int, _ text: String) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: Array((text + "\n").utf8))
    }

    /// The whole response; every connection is closed after one (`Connection: close`).
    public func serialized(headOnly: Bool = false) -> [UInt8] {
        let head =
            "HTTP/1.1 \(status) \(Self.reason(status))\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
            + "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
        return Array(head.utf8) + (headOnly ? [] : body)
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 431: "Request Header Fields Too Large"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }
}
