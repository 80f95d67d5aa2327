import Digests
import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// SHA-256 of a file, read in 1 MiB pieces (never whole in memory).
public enum FileDigest {
    public static func sha256(of path: String) throws(SnapshotError) -> (hex: String, size: Int64) {
        guard let file = fopen(path, "rb") else { throw SnapshotError(.storage, "cannot read \(path): \(SystemError.reason(errno))") }
        defer { fclose(file) }
        var digest = SHA256Stream()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var size: Int64 = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count > 0 {
                digest.update(Array(buffer[0..<count]))
                size += Int64(count)
            }
            if count < buffer.count {
                guard ferror(file) == 0 else { throw SnapshotError(.storage, "reading \(path) failed") }
                break
            }
        }
        return (digest.finish().hex, size)
    }
}
