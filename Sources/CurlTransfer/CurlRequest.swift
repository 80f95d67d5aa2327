import CCurl
import Foundation
import Logs
import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// One transfer through libcurl — HTTP(S) for the s3 and webdav stores, SFTP (libssh2) for the sftp store.
/// Bodies are streamed between files and the network by libcurl's own fread/fwrite, never held whole in
/// memory; only small bodies (errors, listings) and the response headers are kept.
public struct CurlRequest {
    public var url: String
    /// "GET", "HEAD", "PUT" (with `upload`), or any custom verb (MKCOL, MOVE, DELETE).
    public var method = "GET"
    public var headers: [(name: String, value: String)] = []
    public var upload: Upload?
    /// Where the response body goes; nil keeps it in memory (for small answers).
    public var downloadFile: String?
    /// "user:password", for HTTP basic auth or SSH password auth.
    public var credentials: String?
    public var ssh: SSHOptions?
    /// SFTP commands run after the transfer (libcurl's quote commands: "rename a b", "rm a").
    public var sftpCommandsAfter: [String] = []
    /// For a directory URL: names only (SFTP listing).
    public var namesOnly = false
    public var connectTimeoutSeconds = 10
    /// The whole transfer's limit in seconds; 0: none (the low-speed limit alone ends a dead transfer).
    public var totalTimeoutSeconds = 0
    /// The most response-body bytes accepted: the transfer fails beyond it (announced or not). Bodies kept
    /// in memory are bounded by `maximumMemoryBody` whatever this says.
    public var maximumBytes: Int64?
    public static let maximumMemoryBody: Int64 = 4 << 20

    public enum Upload {
        case file(String)
        case bytes([UInt8])
    }

    public struct SSHOptions {
        /// The known_hosts file the server's host key must be in; the connection is refused otherwise.
        public var knownHostsFile: String
        public var privateKeyFile: String?

        public init(knownHostsFile: String, privateKeyFile: String?) {
            self.knownHostsFile = knownHostsFile
            self.privateKeyFile = privateKeyFile
        }
    }

    public init(url: String, method: String = "GET") {
        self.url = url
        self.method = method
    }

    /// Runs the transfer; `progress(done, total)` is called as bytes move. Throws for transport failures
    /// only: HTTP error statuses come back in the response.
    public func perform(progress: (Int64, Int64) -> Void = { _, _ in }) throws(CurlError) -> CurlResponse {
        try withoutActuallyEscaping(progress) { (progress) throws(CurlError) in try perform(reporting: progress) }
    }

    private func perform(reporting progress: @escaping (Int64, Int64) -> Void) throws(CurlError) -> CurlResponse {
        _ = CurlRequest.globalInit
        guard let curl = curl_easy_init() else { throw CurlError("cannot start a transfer (out of memory)") }
        defer { curl_easy_cleanup(curl) }
        var files: [UnsafeMutablePointer<FILE>] = []
        var memory: [UnsafeMutablePointer<CChar>?] = [nil, nil]
        var sizes: [Int] = [0, 0]
        var lists: [UnsafeMutablePointer<curl_slist>?] = []
        var strings: [UnsafeMutablePointer<CChar>] = []
        defer {
            files.forEach { fclose($0) }
            memory.forEach { free($0) }
            lists.forEach { curl_slist_free_all($0) }
            strings.forEach { free($0) }
        }
        func string(_ option: CURLoption, _ value: String) {
            let copy = strdup(value)!
            strings.append(copy)
            hl_curl_setopt_string(curl, option, copy)
        }
        string(CURLOPT_URL, url)
        if namesOnly { hl_curl_setopt_long(curl, CURLOPT_DIRLISTONLY, 1) }
        hl_curl_setopt_long(curl, CURLOPT_NOSIGNAL, 1)
        hl_curl_setopt_long(curl, CURLOPT_CONNECTTIMEOUT, connectTimeoutSeconds)
        if totalTimeoutSeconds > 0 { hl_curl_setopt_long(curl, CURLOPT_TIMEOUT, totalTimeoutSeconds) }
        // A transfer that moves less than 1 KB/s for 60 s is dead: fail it rather than hang.
        hl_curl_setopt_long(curl, CURLOPT_LOW_SPEED_LIMIT, 1024)
        hl_curl_setopt_long(curl, CURLOPT_LOW_SPEED_TIME, 60)
        switch method {
        case "GET": break
        case "HEAD": hl_curl_setopt_long(curl, CURLOPT_NOBODY, 1)
        case "PUT" where upload != nil: break
        default: string(CURLOPT_CUSTOMREQUEST, method)
        }
        if let credentials {
            string(CURLOPT_USERPWD, credentials)
            if ssh == nil { hl_curl_setopt_long(curl, CURLOPT_HTTPAUTH, HL_CURLAUTH_BASIC) }
        }
        if let ssh {
            string(CURLOPT_SSH_KNOWNHOSTS, ssh.knownHostsFile)
            if let key = ssh.privateKeyFile {
                string(CURLOPT_SSH_PRIVATE_KEYFILE, key)
                hl_curl_setopt_long(curl, CURLOPT_SSH_AUTH_TYPES, HL_CURLSSH_AUTH_PUBLICKEY)
            } else {
                hl_curl_setopt_long(curl, CURLOPT_SSH_AUTH_TYPES, HL_CURLSSH_AUTH_PASSWORD)
            }
            hl_curl_setopt_long(curl, CURLOPT_FTP_CREATE_MISSING_DIRS, Int(CURLFTP_CREATE_DIR_RETRY.rawValue))
        }
        var headerList: UnsafeMutablePointer<curl_slist>?
        for header in headers { headerList = curl_slist_append(headerList, "\(header.name): \(header.value)") }
        // libcurl would otherwise send "Expect: 100-continue" and wait for it on uploads.
        if upload != nil && ssh == nil { headerList = curl_slist_append(headerList, "Expect:") }
        lists.append(headerList)
        if let headerList { hl_curl_setopt_pointer(curl, CURLOPT_HTTPHEADER, headerList) }
        var quoteList: UnsafeMutablePointer<curl_slist>?
        for command in sftpCommandsAfter { quoteList = curl_slist_append(quoteList, command) }
        lists.append(quoteList)
        if let quoteList { hl_curl_setopt_pointer(curl, CURLOPT_POSTQUOTE, quoteList) }

        switch upload {
        case .file(let path):
            guard let file = fopen(path, "rb") else { throw CurlError("cannot open \(path): \(SystemError.reason(errno))") }
            files.append(file)
            var status = stat()
            fstat(fileno(file), &status)
            hl_curl_setopt_long(curl, CURLOPT_UPLOAD, 1)
            hl_curl_setopt_pointer(curl, CURLOPT_READDATA, file)
            hl_curl_setopt_offset(curl, CURLOPT_INFILESIZE_LARGE, curl_off_t(status.st_size))
        case .bytes(let bytes):
            let file = tmpfile()!
            files.append(file)
            _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            rewind(file)
            hl_curl_setopt_long(curl, CURLOPT_UPLOAD, 1)
            hl_curl_setopt_pointer(curl, CURLOPT_READDATA, file)
            hl_curl_setopt_offset(curl, CURLOPT_INFILESIZE_LARGE, curl_off_t(bytes.count))
        case nil: break
        }
        let body: UnsafeMutablePointer<FILE>
        if let downloadFile {
            guard let file = fopen(downloadFile, "wb") else { throw CurlError("cannot create \(downloadFile): \(SystemError.reason(errno))") }
            body = file
        } else {
            body = open_memstream(&memory[0], &sizes[0])
        }
        files.append(body)
        hl_curl_setopt_pointer(curl, CURLOPT_WRITEDATA, body)
        let headerStream = open_memstream(&memory[1], &sizes[1])!
        files.append(headerStream)
        hl_curl_setopt_pointer(curl, CURLOPT_HEADERDATA, headerStream)

        let limit = downloadFile == nil ? min(maximumBytes ?? Self.maximumMemoryBody, Self.maximumMemoryBody) : maximumBytes
        if let limit { hl_curl_setopt_offset(curl, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(limit)) }
        let box = ProgressBox(progress, limit: limit ?? .max)
        do {
            hl_curl_setopt_long(curl, CURLOPT_NOPROGRESS, 0)
            hl_curl_setopt_pointer(curl, CURLOPT_XFERINFODATA, Unmanaged.passUnretained(box).toOpaque())
            hl_curl_setopt_progress(curl) { data, downloadTotal, downloaded, uploadTotal, uploaded in
                guard let data else { return 0 }
                let box = Unmanaged<ProgressBox>.fromOpaque(data).takeUnretainedValue()
                // Non-zero stops the transfer: the server sent more than it may (no Content-Length, or a wrong one).
                if Int64(downloaded) > box.limit { return 1 }
                if uploadTotal > 0 {
                    box.report(Int64(uploaded), Int64(uploadTotal))
                } else if downloadTotal > 0 {
                    box.report(Int64(downloaded), Int64(downloadTotal))
                }
                return 0
            }
        }
        let code = withExtendedLifetime(box) { curl_easy_perform(curl) }
        if code == CURLE_FILESIZE_EXCEEDED || (code == CURLE_ABORTED_BY_CALLBACK && limit != nil) {
            throw CurlError("\(method) \(URLRedaction.redact(url)): the response is larger than the \(limit ?? 0) bytes expected: refused")
        }
        guard code == CURLE_OK else {
            throw CurlError(
                "\(method) \(URLRedaction.redact(url)): \(String(cString: curl_easy_strerror(code)))", notFound: code == CURLE_REMOTE_FILE_NOT_FOUND)
        }
        var status = 0
        hl_curl_response_code(curl, &status)
        fflush(body)
        fflush(headerStream)
        let bodyBytes = downloadFile == nil ? bytes(memory[0], sizes[0]) : []
        return CurlResponse(status: status, headerText: String(decoding: bytes(memory[1], sizes[1]), as: UTF8.self), body: bodyBytes)
    }

    private func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ count: Int) -> [UInt8] {
        guard let pointer, count > 0 else { return [] }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: count) { Array(UnsafeBufferPointer(start: $0, count: count)) }
    }

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()
}

/// Calls the progress closure at most every 64 KiB, and at the end.
private final class ProgressBox {
    let progress: (Int64, Int64) -> Void
    let limit: Int64
    var last: Int64 = -1

    init(_ progress: @escaping (Int64, Int64) -> Void, limit: Int64) {
        self.progress = progress
        self.limit = limit
    }

    func report(_ done: Int64, _ total: Int64) {
        guard done == total || done - last >= 65536 else { return }
        last = done
        progress(done, total)
    }
}

public struct CurlResponse {
    /// HTTP status (0 for SFTP, which has none).
    public var status: Int
    /// Header names in lowercase; the last response's headers when there were redirects or 100-continue.
    public var headers: [String: String]
    public var body: [UInt8]

    init(status: Int, headerText: String, body: [UInt8]) {
        self.status = status
        self.body = body
        var headers: [String: String] = [:]
        for line in headerText.split(whereSeparator: { $0 == "\r\n" || $0 == "\n" }) {
            if line.hasPrefix("HTTP/") { headers.removeAll(); continue }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        }
        self.headers = headers
    }

    /// The body as text, shortened, for error messages.
    public var bodyText: String { String(decoding: body.prefix(300), as: UTF8.self) }
}

public struct CurlError: Error, CustomStringConvertible {
    public var description: String
    /// The remote file or directory does not exist (SFTP).
    public var notFound = false
    public init(_ description: String, notFound: Bool = false) {
        self.description = description
        self.notFound = notFound
    }
}
