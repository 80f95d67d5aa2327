import CurlTransfer
import Foundation
import HarmonyConfig
import Logs

/// The `sftp` store's directory. URL as HarmonyLite's, `sftp://user:password@host:port/path`, plus two
/// optional parameters of ours: `key=<private key file>` (key authentication instead of the password) and
/// `known_hosts=<file>` (default `~/.ssh/known_hosts`). The server's host key must be in that file:
/// unlike HarmonyLite, which accepted any host key, an unknown or changed key is refused.
struct SFTPDirectory: SnapshotDirectory {
    let base: String
    /// The directory as quote commands name it: absolute, or relative to the login directory for `/~/`.
    let commandPath: String
    let credentials: String?
    let ssh: CurlRequest.SSHOptions

    init(url: String) throws {
        guard let components = URLComponents(string: url), components.scheme == "sftp", let host = components.host else {
            throw SnapshotError(.configuration, "[snapshot.sftp] url \"\(URLRedaction.redact(url))\" is not an sftp:// URL")
        }
        let parameters = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        let path = components.path.split(separator: "/").joined(separator: "/")
        base = "sftp://\(host)" + (components.port.map { ":\($0)" } ?? "") + "/" + path
        commandPath = path.hasPrefix("~/") ? String(path.dropFirst(2)) : path == "~" ? "." : "/" + path
        if let user = components.user {
            credentials = user + ":" + (components.password?.removingPercentEncoding ?? "")
        } else {
            credentials = nil
        }
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "/root"
        ssh = CurlRequest.SSHOptions(knownHostsFile: parameters["known_hosts"] ?? home + "/.ssh/known_hosts", privateKeyFile: parameters["key"])
        guard FileManager.default.isReadableFile(atPath: ssh.knownHostsFile) else {
            throw SnapshotError(
                .configuration,
                "the sftp store checks the server's host key against \(ssh.knownHostsFile), which cannot be read; add the server with ssh-keyscan, or name a file with ?known_hosts="
            )
        }
    }

    var description: String { "sftp \(base)" }

    func list() throws -> [String] {
        var request = self.request(base + "/")
        request.namesOnly = true
        let response: CurlResponse
        do {
            response = try request.perform()
        } catch {
            if error.notFound { return [] }
            throw error
        }
        return SnapshotListing.sftp(response.body)
    }

    func put(_ upload: CurlRequest.Upload, as name: String, progress: (Int64, Int64) -> Void) throws {
        var request = self.request(base + "/" + name)
        request.upload = upload
        _ = try request.perform(progress: progress)
    }

    func get(_ name: String, into file: String, maximumBytes: Int64, progress: (Int64, Int64) -> Void) throws {
        var request = self.request(base + "/" + name)
        request.downloadFile = file
        request.maximumBytes = maximumBytes
        _ = try request.perform(progress: progress)
    }

    func read(_ name: String) throws -> [UInt8] {
        try request(base + "/" + name).perform().body
    }

    func delete(_ name: String) throws {
        var request = self.request(base + "/", method: "HEAD")
        request.sftpCommandsAfter = ["rm \(commandPath)/\(name)"]
        _ = try request.perform()
    }

    private func request(_ url: String, method: String = "GET") -> CurlRequest {
        var request = CurlRequest(url: url, method: method)
        request.credentials = credentials
        request.ssh = ssh
        return request
    }
}
