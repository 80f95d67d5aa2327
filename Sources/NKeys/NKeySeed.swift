import COpenSSL
import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// A NATS user NKey seed (`SU…`, as `nk -gen user` writes it) and the public key it implies (`U…`).
///
/// libnats 3.4 signs with the seed file but needs the public key too, and the embedded server's
/// authorization needs it as well; HarmonyLite's users only have the seed file. Encoding: base32 (RFC 4648,
/// no padding) of prefix bytes, the raw 32-byte key, and a CRC-16/XMODEM little-endian.
public struct NKeySeed: Sendable {
    /// The 32-byte ed25519 seed.
    let raw: [UInt8]

    public struct InvalidSeed: Error, CustomStringConvertible {
        public var description: String
    }

    static let seedPrefix: UInt8 = 18 << 3  // 'S'
    static let userPrefix: UInt8 = 20 << 3  // 'U'

    /// Parses the first `SU…` token of `text` (a bare seed file, or a decorated credentials file).
    public init(parsing text: String) throws(InvalidSeed) {
        guard let token = text.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).first(where: { $0.hasPrefix("SU") }) else {
            throw InvalidSeed(description: "no user NKey seed (a word starting with SU) found")
        }
        guard let bytes = Base32.decode(String(token)), bytes.count == 36 else {
            throw InvalidSeed(description: "the seed is not valid base32 of the right length")
        }
        let body = Array(bytes[0..<34])
        guard CRC16.xmodem(body) == UInt16(bytes[34]) | UInt16(bytes[35]) << 8 else {
            throw InvalidSeed(description: "the seed's checksum does not match")
        }
        guard bytes[0] & 0xF8 == Self.seedPrefix,
            (bytes[0] & 0x07) << 5 | (bytes[1] >> 3) == Self.userPrefix
        else { throw InvalidSeed(description: "the seed is not a user seed") }
        raw = Array(bytes[2..<34])
    }

    /// Reads and parses a seed file.
    public init(contentsOf path: String) throws(InvalidSeed) {
        guard let file = fopen(path, "r") else {
            throw InvalidSeed(description: "cannot read \(path): \(SystemError.reason(errno))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            bytes.append(contentsOf: chunk[0..<n])
            if n < chunk.count { break }
        }
        try self.init(parsing: String(decoding: bytes, as: UTF8.self))
    }

    init(raw: [UInt8]) { self.raw = raw }

    /// A new random user seed (for tests and tooling).
    public static func generate() -> NKeySeed {
        var generator = SystemRandomNumberGenerator()
        return NKeySeed(raw: (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// The seed in its `SU…` text form.
    public var encoded: String {
        let prefix: [UInt8] = [Self.seedPrefix | Self.userPrefix >> 5, (Self.userPrefix & 31) << 3]
        return Self.encodeWithChecksum(prefix + raw)
    }

    /// The `U…` public key.
    public var publicKey: String {
        Self.encodeWithChecksum([Self.userPrefix] + ed25519PublicKey())
    }

    private func ed25519PublicKey() -> [UInt8] {
        guard let key = raw.withUnsafeBufferPointer({ EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32) }) else {
            preconditionFailure("libcrypto cannot build an ed25519 key")
        }
        defer { EVP_PKEY_free(key) }
        var key32 = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard EVP_PKEY_get_raw_public_key(key, &key32, &length) == 1, length == 32 else {
            preconditionFailure("libcrypto cannot derive an ed25519 public key")
        }
        return key32
    }

    private static func encodeWithChecksum(_ bytes: [UInt8]) -> String {
        let crc = CRC16.xmodem(bytes)
        return Base32.encode(bytes + [UInt8(crc & 0xFF), UInt8(crc >> 8)])
    }
}

enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var buffer = 0
        var bits = 0
        for byte in bytes {
            buffer = buffer << 8 | Int(byte)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[(buffer >> (bits - 5)) & 31])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[(buffer << (5 - bits)) & 31]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer = 0
        var bits = 0
        for character in text.utf8 {
            guard let value = alphabet.firstIndex(of: character) else { return nil }
            buffer = (buffer << 5 | value) & 0xFFFF
            bits += 5
            if bits >= 8 {
                out.append(UInt8((buffer >> (bits - 8)) & 0xFF))
                bits -= 8
            }
        }
        return out
    }
}

enum CRC16 {
    /// CRC-16/XMODEM (polynomial 0x1021, initial 0), as NKeys use it.
    static func xmodem(_ bytes: [UInt8]) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        }
        return crc
    }
}
