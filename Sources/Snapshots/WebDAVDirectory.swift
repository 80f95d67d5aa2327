import CurlTransfer
import Foundation
import HarmonyConfig
import Logs

/// The `webdav` store's directory. URL as HarmonyLite's: `https://host/path?dir=<dir>&login=<u>&secret=<p>`
/// (the three parameters are taken out of the URL; `dir` defaults to `/`).
struct WebDAVDirectory: SnapshotDirectory {
    let base: String
    let credentials: String?

    init(url: String) throws {
        guard var components = URLComponents(string: url), let scheme = components.scheme, ["http", "https"].contains(scheme), components.host != nil else {
            throw SnapshotError(.configuration, "[snapshot.webdav] url \"\(URLRedaction.redact(url))\" is not an http:// or https:// URL")
        }
        let parameters = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        components.queryItems = nil
        components.query = nil
        let root = (components.string ?? url).split(separator: "/", omittingEmptySubsequences: false)
        let dir = (parameters["dir"] ?? "/").split(separator: "/").map(String.init)
        base = (root.last == "" ? root.dropLast() : root[...]).joined(separator: "/") + (dir.isEmpty ? "" : "/" + dir.joined(separator: "/"))
        if let login = parameters["login"] { credentials = login + ":" + (parameters["secret"] ?? "") } else { credentials = nil }
    }

    var description: String { "webdav \(base)" }

    func list() throws -> [String] {
        var request = self.request(base + "/", "PROPFIND")
        request.headers = [("Depth", "1")]
        let response = try request.perform()
        if response.status == 404 { return [] }
        try check(response, "PROPFIND", base)
        return SnapshotListing.webDAV(response.body)
    }

    func put(_ upload: CurlRequest.Upload, as name: String, progress: (Int64, Int64) -> Void) throws {
        var request = self.request(base + "/" + name, "PUT")
        request.upload = upload
        var response = try request.perform(progress: progress)
        // The directory may not exist yet: servers say 409 (RFC 4918), 404, or (nginx) 500.
        if [404, 409, 500].contains(response.status) {
            try makeDirectories()
            response = try request.perform(progress: progress)
        }
        try check(response, "PUT", name)
    }

    func get(_ name: String, into file: String, maximumBytes: Int64, progress: (Int64, Int64) -> Void) throws {
        var request = self.request(base + "/" + name, "GET")
        request.downloadFile = file
        request.maximumBytes = maximumBytes
        let response = try request.perform(progress: progress)
        try check(response, "GET", name)
    }

    func read(_ name: String) throws -> [UInt8] {
        let response = try request(base + "/" + name, "GET").perform()
        try check(response, "GET", name)
        return response.body
    }

    func delete(_ name: String) throws {
        let response = try request(base + "/" + name, "DELETE").perform()
        if response.status != 404 { try check(response, "DELETE", name) }
    }

    private func makeDirectories() throws {
        guard let components = URLComponents(string: base) else { return }
        var url = base.prefix(upTo: base.range(of: components.path)?.lowerBound ?? base.endIndex)
        for segment in components.path.split(separator: "/") {
            url += "/" + segment
            let response = try request(String(url) + "/", "MKCOL").perform()
            // 405: it exists already.
            guard response.status < 300 || response.status == 405 else { return try check(response, "MKCOL", String(url)) }
        }
    }

    private func request(_ url: String, _ method: String) -> CurlRequest {
        var request = CurlRequest(url: url, method: method)
        request.credentials = credentials
        return request
    }

    private func check(_ response: CurlResponse, _ method: String, _ what: String) throws {
        guard (200..<300).contains(response.status) else {
            throw SnapshotError(.transfer, "webdav \(method) \(what) at \(base): HTTP \(response.status) \(response.bodyText)")
        }
    }
}
