import CurlTransfer
import Foundation
import HarmonyConfig

/// The `s3` store: one object `<path>/snapshot.db` in `bucket` (path style, `http(s)://endpoint/bucket/key`),
/// the metadata in its `x-amz-meta-harmonylite-snapshot` header, so object and metadata change together in
/// one PUT. Requests are signed with AWS Signature V4; the region is read from an AWS endpoint name
/// (`s3.<region>.amazonaws.com`), else `us-east-1`, which S3-compatible servers accept.
public struct S3SnapshotStore: SnapshotStore {
    let settings: Configuration.S3Store
    let signer: AWSSignatureV4
    let baseURL: String
    let host: String
    let key: String

    static let metadataHeader = "x-amz-meta-harmonylite-snapshot"

    public init(_ settings: Configuration.S3Store) throws {
        guard !settings.endpoint.isEmpty, !settings.bucket.isEmpty else {
            throw SnapshotError(.configuration, "the s3 store needs [snapshot.s3] endpoint and bucket")
        }
        self.settings = settings
        host = settings.endpoint
        baseURL = (settings.useSSL ? "https://" : "http://") + settings.endpoint
        let prefix = settings.path.split(separator: "/").joined(separator: "/")
        key = prefix.isEmpty ? "snapshot.db" : prefix + "/snapshot.db"
        signer = AWSSignatureV4(
            accessKey: settings.accessKey, secretKey: settings.secret, sessionToken: settings.sessionToken,
            region: Self.region(of: settings.endpoint))
        try createBucketIfMissing()
    }

    static func region(of endpoint: String) -> String {
        let labels = endpoint.split(separator: ":").first.map { $0.split(separator: ".") } ?? []
        if labels.count == 4, labels[0] == "s3" || labels[0].hasPrefix("s3-"), labels[2] == "amazonaws" { return String(labels[1]) }
        return "us-east-1"
    }

    public func latest() throws -> SnapshotMetadata? {
        let response = try send("HEAD", objectPath)
        if response.status == 404 { return nil }
        try check(response, "HEAD")
        return try metadata(response)
    }

    public func upload(_ file: String, metadata: SnapshotMetadata, progress: (Int64, Int64) -> Void) throws {
        let text = String(decoding: metadata.encoded(), as: UTF8.self)
        let response = try send("PUT", objectPath, headers: [Self.metadataHeader: text], upload: .file(file), progress: progress)
        try check(response, "PUT")
    }

    /// HEAD first, so the metadata's size is checked against the disk and bounds the GET; the GET's own
    /// metadata must be the same (else the object was replaced meanwhile, and the caller tries again).
    public func download(to file: String, progress: (Int64, Int64) -> Void) throws -> SnapshotMetadata? {
        guard let expected = try latest() else { return nil }
        try DownloadBound.check(expected, into: file)
        let response = try send("GET", objectPath, downloadFile: file, maximumBytes: expected.size, progress: progress)
        if response.status == 404 { return nil }
        if response.status >= 300 {
            let body = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            throw SnapshotError(.transfer, "s3 GET \(bucketURL)/\(key): HTTP \(response.status) \(body.prefix(300))")
        }
        let metadata = try metadata(response)
        guard metadata == expected else { throw SnapshotError(.transfer, "s3 \(bucketURL)/\(key) was replaced during the download: try again") }
        return metadata
    }

    private var objectPath: String { "/\(settings.bucket)/\(key)" }
    private var bucketURL: String { "\(baseURL)/\(settings.bucket)" }

    private func createBucketIfMissing() throws {
        let head = try send("HEAD", "/\(settings.bucket)")
        guard head.status == 404 else { return try check(head, "HEAD bucket") }
        let created = try send("PUT", "/\(settings.bucket)", upload: .bytes([]))
        // 409: someone created it meanwhile.
        if created.status != 409 { try check(created, "create bucket") }
    }

    private func metadata(_ response: CurlResponse) throws -> SnapshotMetadata {
        guard let text = response.headers[Self.metadataHeader] else {
            throw SnapshotError(.refused, "\(bucketURL)/\(key) has no \(Self.metadataHeader) header: not a HarmonyLite snapshot")
        }
        return try SnapshotMetadata(decoding: Array(text.utf8))
    }

    private func check(_ response: CurlResponse, _ what: String) throws {
        guard (200..<300).contains(response.status) else {
            throw SnapshotError(.transfer, "s3 \(what) \(bucketURL)/\(key): HTTP \(response.status) \(response.bodyText)")
        }
    }

    private func send(
        _ method: String, _ path: String, headers: [String: String] = [:], upload: CurlRequest.Upload? = nil,
        downloadFile: String? = nil, maximumBytes: Int64? = nil, progress: (Int64, Int64) -> Void = { _, _ in }
    ) throws -> CurlResponse {
        let encoded = AWSSignatureV4.encodePath(path)
        var request = CurlRequest(url: baseURL + encoded, method: method)
        request.upload = upload
        request.downloadFile = downloadFile
        request.maximumBytes = maximumBytes
        let signed = settings.accessKey.isEmpty ? headers : signer.sign(method: method, host: host, path: encoded, headers: headers, date: Date())
        request.headers = signed.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return try request.perform(progress: progress)
    }
}
