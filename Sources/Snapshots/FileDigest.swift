import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

/// SHA-256 of a file, read in 1 MiB pieces (never whole in memory).
public enum FileDigest {
    public static func sha256(of path: String) throws(SnapshotError) -> (hex: String, size: Int64) {
        guard let file = fopen(path, "rb") else { throw SnapshotError("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { fclose(file) }
        guard let context = EVP_MD_CTX_new() else { throw SnapshotError("out of memory") }
        defer { EVP_MD_CTX_free(context) }
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var size: Int64 = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if count > 0 {
                _ = buffer.withUnsafeBytes { EVP_DigestUpdate(context, $0.baseAddress, count) }
                size += Int64(count)
            }
            if count < buffer.count {
                guard ferror(file) == 0 else { throw SnapshotError("reading \(path) failed") }
                break
            }
        }
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        return (digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(), size)
    }
}
