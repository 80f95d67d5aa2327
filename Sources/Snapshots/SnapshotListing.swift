import Foundation

/// Directory listings from WebDAV and SFTP servers, read as untrusted: only names this node itself would
/// write (`snapshot-<digits>-<16 hex>.db|.json`) are kept. A listed name goes into URLs and into SFTP
/// `rm` commands, so a name with `/`, `..`, spaces or control characters is never used.
enum SnapshotListing {
    /// The file names in a PROPFIND (Depth 1) answer: the last segment of every `href`, percent-decoded.
    /// A linear scan (no regular expression): the body may be megabytes of anything.
    static func webDAV(_ body: [UInt8]) -> [String] {
        let text = String(decoding: body, as: UTF8.self)
        var names: [String] = []
        for element in text.split(separator: "<", omittingEmptySubsequences: true) {
            guard let close = element.firstIndex(of: ">") else { continue }
            let tag = element[..<close]
            guard tag == "href" || (tag.hasSuffix(":href") && !tag.hasPrefix("/")) else { continue }
            let href = element[element.index(after: close)...]
            let path = String(href).removingPercentEncoding ?? String(href)
            if let last = path.split(separator: "/").last, isSnapshotFile(last) { names.append(String(last)) }
        }
        return names
    }

    /// The names in an SFTP names-only listing, one per line.
    static func sftp(_ body: [UInt8]) -> [String] {
        String(decoding: body, as: UTF8.self).split(whereSeparator: \.isNewline).filter(isSnapshotFile).map(String.init)
    }

    /// `snapshot-<1…20 digits>-<16 lowercase hex>.db` or `.json`, as `DirectorySnapshotStore.stem` names them.
    static func isSnapshotFile(_ name: Substring) -> Bool {
        let bytes = Array(name.utf8)
        let prefix = Array("snapshot-".utf8)
        guard bytes.count <= 64, bytes.starts(with: prefix) else { return false }
        var rest = bytes[prefix.count...]
        let digits = rest.prefix { (48...57).contains($0) }
        guard (1...20).contains(digits.count) else { return false }
        rest = rest.dropFirst(digits.count)
        guard rest.first == UInt8(ascii: "-") else { return false }
        rest = rest.dropFirst()
        let hex = rest.prefix { (48...57).contains($0) || (97...102).contains($0) }
        guard hex.count == 16 else { return false }
        let suffix = String(decoding: rest.dropFirst(16), as: UTF8.self)
        return suffix == ".db" || suffix == ".json"
    }
}
