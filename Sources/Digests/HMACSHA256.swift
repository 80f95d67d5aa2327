import COpenSSL

/// HMAC-SHA256 (for AWS Signature Version 4).
public func hmacSHA256(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
    var digest = [UInt8](repeating: 0, count: 32)
    var length: UInt32 = 0
    _ = key.withUnsafeBytes { keyBytes in
        message.withUnsafeBytes { messageBytes in
            HMAC(
                EVP_sha256(), keyBytes.baseAddress, Int32(keyBytes.count), messageBytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
                messageBytes.count, &digest, &length)
        }
    }
    return digest
}

/// SHA-256 of bytes in one call.
public func sha256(_ bytes: [UInt8]) -> [UInt8] {
    var stream = SHA256Stream()
    stream.update(bytes)
    return stream.finish()
}
