#if canImport(Glibc)
import Glibc
#endif

/// HarmonyLite's default node id: FNV-1 (not 1a) 64-bit of the machine id, so a node keeps its id across
/// restarts without configuration. Set `node_id` or `-node-id` on cloned machines, whose ids collide.
public enum NodeIdentity {
    public static let machineDerived: @Sendable () -> UInt64 = {
        for path in ["/etc/machine-id", "/var/lib/dbus/machine-id"] {
            if let id = readFirstLine(path), !id.isEmpty { return fnv1(Array(id.utf8)) }
        }
        return UInt64.random(in: 1...UInt64.max)
    }

    public static func fnv1(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 14_695_981_039_346_656_037
        for byte in bytes {
            hash = hash &* 1_099_511_628_211
            hash ^= UInt64(byte)
        }
        return hash
    }

    private static func readFirstLine(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 256)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self).filter { !$0.isWhitespace }
    }
}
