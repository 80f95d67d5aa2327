import ChangeEvents
import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// HarmonyLite's seq map: a CBOR map of stream name → last applied sequence, at `seq_map_path`. The
/// authoritative cursor lives in the database, committed with the changes it covers; this file mirrors it
/// after every commit (so it is never ahead of the database), written atomically: temp file, fsync,
/// rename, fsync of the directory. Operators delete it to force a snapshot restore.
///
/// Next to each stream's sequence it keeps the stream's identity (see `StreamIdentities`) under the key
/// `created.<stream>`: no stream is called that (JetStream refuses `.` in stream names), and a reader that
/// expects HarmonyLite's map still reads the sequences.
public enum SeqMapFile {
    static let identityPrefix = "created."

    public struct Corrupt: Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "seq map \(path) is unreadable: \(reason)" }
    }

    /// Far above any real seq map (a few dozen bytes per stream).
    public static let maximumSize = 16 << 20

    /// The cursor (stream → last sequence); nil when the file does not exist.
    public static func read(_ path: String) throws(Corrupt) -> [String: UInt64]? {
        try readWithStreams(path)?.cursor
    }

    /// The cursor and the identities of the streams it belongs to; nil when the file does not exist.
    public static func readWithStreams(_ path: String) throws(Corrupt) -> (cursor: [String: UInt64], streams: [String: UInt64])? {
        guard let map = try readMap(path) else { return nil }
        var cursor: [String: UInt64] = [:], streams: [String: UInt64] = [:]
        for (key, value) in map {
            if key.hasPrefix(identityPrefix) { streams[String(key.dropFirst(identityPrefix.count))] = value } else { cursor[key] = value }
        }
        return (cursor, streams)
    }

    /// Upstream HarmonyLite's seq map, read as upstream reads it: an empty file (created before the first
    /// save) is an empty map, and bytes after the first map are ignored (upstream rewrites the file in
    /// place from offset 0 without truncating it). Identity keys of ours, if any, are left out.
    public static func readUpstream(_ path: String) throws(Corrupt) -> [String: UInt64]? {
        guard let bytes = try readBytes(path) else { return nil }
        guard !bytes.isEmpty else { return [:] }
        do {
            return try CBORMap.decode(bytes, allowTrailing: true).filter { !$0.key.hasPrefix(identityPrefix) }
        } catch {
            throw Corrupt(path: path, reason: error.reason)
        }
    }

    private static func readMap(_ path: String) throws(Corrupt) -> [String: UInt64]? {
        guard let bytes = try readBytes(path) else { return nil }
        do {
            return try CBORMap.decode(bytes)
        } catch {
            throw Corrupt(path: path, reason: error.reason)
        }
    }

    private static func readBytes(_ path: String) throws(Corrupt) -> [UInt8]? {
        guard let file = fopen(path, "rb") else {
            if errno == ENOENT { return nil }
            throw Corrupt(path: path, reason: SystemError.reason(errno))
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            bytes.append(contentsOf: chunk[0..<n])
            if n < chunk.count { break }
            guard bytes.count <= maximumSize else { throw Corrupt(path: path, reason: "larger than \(maximumSize) bytes") }
        }
        return bytes
    }

    public static func write(_ cursor: [String: UInt64], streams: [String: UInt64] = [:], to path: String) throws(Corrupt) {
        let temporary = path + ".tmp"
        var map = cursor
        for (stream, created) in streams { map[identityPrefix + stream] = created }
        let bytes = CBORMap.encode(map)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Corrupt(path: temporary, reason: SystemError.reason(errno)) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0 else {
            unlink(temporary)
            throw Corrupt(path: temporary, reason: "cannot write: \(SystemError.reason(errno))")
        }
        guard rename(temporary, path) == 0 else { throw Corrupt(path: path, reason: "rename: \(SystemError.reason(errno))") }
        let directory = open(path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }
}

/// The subset of CBOR (RFC 8949) a seq map uses: one definite-length map of text strings to unsigned
/// integers, as fxamacker/cbor writes `map[string]uint64`.
enum CBORMap {
    struct Failure: Error { var reason: String }

    static func encode(_ map: [String: UInt64]) -> [UInt8] {
        var out: [UInt8] = []
        head(major: 5, UInt64(map.count), into: &out)
        for key in map.keys.sorted() {
            let utf8 = Array(key.utf8)
            head(major: 3, UInt64(utf8.count), into: &out)
            out += utf8
            head(major: 0, map[key]!, into: &out)
        }
        return out
    }

    static func decode(_ bytes: [UInt8], allowTrailing: Bool = false) throws(Failure) -> [String: UInt64] {
        var index = 0
        func argument(_ major: UInt8) throws(Failure) -> UInt64 {
            guard index < bytes.count else { throw Failure(reason: "truncated") }
            let initial = bytes[index]
            index += 1
            guard initial >> 5 == major else { throw Failure(reason: "unexpected CBOR major type \(initial >> 5) at byte \(index - 1)") }
            let info = initial & 0x1F
            if info < 24 { return UInt64(info) }
            let width: Int
            switch info {
            case 24: width = 1
            case 25: width = 2
            case 26: width = 4
            case 27: width = 8
            default: throw Failure(reason: "unsupported CBOR length encoding at byte \(index - 1)")
            }
            guard index + width <= bytes.count else { throw Failure(reason: "truncated") }
            var value: UInt64 = 0
            for _ in 0..<width {
                value = value << 8 | UInt64(bytes[index])
                index += 1
            }
            return value
        }
        let count = try argument(5)
        guard count <= 1 << 16 else { throw Failure(reason: "map of \(count) entries") }
        var map: [String: UInt64] = [:]
        for _ in 0..<count {
            let length = Int(clamping: try argument(3))
            guard length <= bytes.count - index else { throw Failure(reason: "truncated") }
            guard let key = String(validating: bytes[index..<index + length], as: UTF8.self) else { throw Failure(reason: "a key is not UTF-8") }
            index += length
            let sequence = try argument(0)
            // JetStream sequences stay far below 2^63; a larger one would overflow the cursor's arithmetic.
            guard sequence <= UInt64(Int64.max) else { throw Failure(reason: "sequence \(sequence) of \(key.prefix(64)) is out of range") }
            map[key] = sequence
        }
        guard index == bytes.count || allowTrailing else { throw Failure(reason: "\(bytes.count - index) trailing bytes") }
        return map
    }

    private static func head(major: UInt8, _ value: UInt64, into out: inout [UInt8]) {
        CBORHead.append(major: major, value, to: &out)
    }
}
