import CNats
import Digests
import Foundation
import SystemCalls

#if canImport(Glibc)
import Glibc
#endif

/// An object's description in a NATS object store, as the NATS object-store layout (ADR-20) stores it:
/// the JSON of the last message on `$O.<bucket>.M.<base64url(name)>`.
public struct ObjectInfo: Codable, Equatable, Sendable {
    public struct Options: Codable, Equatable, Sendable {
        public var maxChunkSize: Int
        enum CodingKeys: String, CodingKey { case maxChunkSize = "max_chunk_size" }
    }

    public var name: String
    public var bucket: String
    public var nuid: String
    public var size: Int64
    public var mtime: String
    public var chunks: Int
    /// `SHA-256=` and the URL-safe base64 of the digest.
    public var digest: String
    public var headers: [String: [String]]?
    public var options: Options?

    /// The most bytes of description a node reads (NATS's own messages are at most 1 MiB).
    public static let maximumEncodedSize = 1 << 20

    /// Decodes an untrusted description (anyone who can publish on the bucket's subjects wrote it): JSON in
    /// range, a nuid that is one subject token (it names the chunk subject this node reads and purges; `>`
    /// would purge every chunk), and a chunk count the size can hold; the failure says what is wrong.
    public static func decode(_ bytes: [UInt8]) -> Result<ObjectInfo, ObjectInfoError> {
        guard bytes.count <= maximumEncodedSize else { return .failure(.init("description of \(bytes.count) bytes, above \(maximumEncodedSize)")) }
        guard let info = try? JSONDecoder().decode(ObjectInfo.self, from: Data(bytes)) else {
            return .failure(.init("its description is not object-store JSON"))
        }
        guard !info.nuid.isEmpty, info.nuid.utf8.count <= 64,
            info.nuid.utf8.allSatisfy({ (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) })
        else {
            return .failure(.init("its nuid \"\(info.nuid.prefix(64))\" is not a NUID"))
        }
        guard info.size >= 0, info.chunks >= 0 else { return .failure(.init("it claims \(info.size) bytes in \(info.chunks) chunks")) }
        // Every chunk holds at least one byte, and an object with bytes has at least one chunk.
        guard Int64(info.chunks) <= info.size, (info.chunks == 0) == (info.size == 0) else {
            return .failure(.init("\(info.chunks) chunks cannot hold \(info.size) bytes"))
        }
        return .success(info)
    }
}

public struct ObjectInfoError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A NATS object store bucket built on plain JetStream calls (libnats 3.4 has no object-store API), in the
/// layout NATS tools use, so `nats object ls/get` read what we put: stream `OBJ_<bucket>`, chunks of
/// 128 KiB on `$O.<bucket>.C.<nuid>`, the description on `$O.<bucket>.M.<base64url(name)>` with a
/// subject rollup. Files are streamed chunk by chunk, never held whole in memory.
public final class ObjectStoreBucket {
    public let bucket: String
    private let connection: NATSConnection
    private var stream: String { "OBJ_" + bucket }
    public static let chunkSize = 128 * 1024

    /// Opens the bucket, creating its stream when missing.
    public init(connection: NATSConnection, bucket: String, replicas: Int) throws(NATSError) {
        self.connection = connection
        self.bucket = bucket
        var spec = StreamSpecification(name: "OBJ_" + bucket, subjects: ["$O.\(bucket).C.>", "$O.\(bucket).M.>"], replicas: replicas, maxMessages: -1)
        spec.allowRollup = true
        _ = try connection.ensureStream(spec, updateExisting: false)
    }

    /// The object's description, or nil when the bucket has no such object.
    public func info(_ name: String) throws(NATSError) -> ObjectInfo? {
        var message: OpaquePointer?
        var options = jsDirectGetMsgOptions()
        jsDirectGetMsgOptions_Init(&options)
        let subject = strdup(metaSubject(name))
        defer { free(subject) }
        options.LastBySubject = UnsafePointer(subject)
        let status = js_DirectGetMsg(&message, connection.jetStream, stream, nil, &options)
        if status == NATS_NOT_FOUND { return nil }
        guard status == NATS_OK, let message else { throw NATSError(operation: "object info \(bucket)/\(name)", status: status) }
        defer { natsMsg_Destroy(message) }
        switch ObjectInfo.decode(Self.data(of: message)) {
        case .success(let info): return info
        case .failure(let error): throw NATSError(operation: "object info \(bucket)/\(name)", status: NATS_ERR, detail: error.description)
        }
    }

    /// Stores the file as `name` (replacing an older object of that name only once the new one is whole),
    /// reporting progress as (bytes sent, total).
    public func put(_ name: String, file path: String, headers: [String: [String]] = [:], progress: (Int64, Int64) -> Void = { _, _ in }) throws -> ObjectInfo {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw NATSError(operation: "read \(path)", status: NATS_ERR, detail: SystemError.reason(errno))
        }
        defer { try? handle.close() }
        let total = Int64((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
        let previous = try info(name)
        let nuid = Self.newNUID()
        let chunkSubject = "$O.\(bucket).C.\(nuid)"
        var digest = SHA256Stream()
        var size: Int64 = 0
        var chunks = 0
        while true {
            let chunk = try handle.read(upToCount: Self.chunkSize) ?? Data()
            if chunk.isEmpty { break }
            let bytes = [UInt8](chunk)
            digest.update(bytes)
            do {
                try connection.publish(subject: chunkSubject, payload: bytes)
            } catch {
                try? purge(chunkSubject)
                throw error
            }
            size += Int64(bytes.count)
            chunks += 1
            progress(size, total)
        }
        let info = ObjectInfo(
            name: name, bucket: bucket, nuid: nuid, size: size, mtime: Self.timestamp(), chunks: chunks,
            digest: "SHA-256=" + Self.base64URL(digest.finish()), headers: headers.isEmpty ? nil : headers,
            options: .init(maxChunkSize: Self.chunkSize)
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try connection.publish(subject: metaSubject(name), payload: [UInt8](try encoder.encode(info)), headers: [("Nats-Rollup", "sub")])
        if let previous, previous.nuid != nuid { try? purge("$O.\(bucket).C.\(previous.nuid)") }
        return info
    }

    /// Writes the object to `path`, checking size, chunk count and digest; reports (bytes received, total).
    /// Nil (and no file) when the bucket has no such object. `check` sees the description before any byte
    /// is fetched (to refuse a size the disk cannot take); no more than its size is ever written.
    @discardableResult
    public func get(
        _ name: String, to path: String, check: (ObjectInfo) throws -> Void = { _ in },
        progress: (Int64, Int64) -> Void = { _, _ in }
    ) throws -> ObjectInfo? {
        guard let info = try info(name) else { return nil }
        try check(info)
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw NATSError(operation: "write \(path)", status: NATS_ERR, detail: SystemError.reason(errno))
        }
        defer { try? handle.close() }
        let chunkSubject = strdup("$O.\(bucket).C.\(info.nuid)")
        defer { free(chunkSubject) }
        var digest = SHA256Stream()
        var size: Int64 = 0
        var nextSequence: UInt64 = 1
        for _ in 0..<info.chunks {
            var message: OpaquePointer?
            var options = jsDirectGetMsgOptions()
            jsDirectGetMsgOptions_Init(&options)
            options.Sequence = nextSequence
            options.NextBySubject = UnsafePointer(chunkSubject)
            let status = js_DirectGetMsg(&message, connection.jetStream, stream, nil, &options)
            guard status == NATS_OK, let message else {
                throw NATSError(operation: "object \(bucket)/\(name): chunk after \(size) bytes", status: status)
            }
            let bytes = Self.data(of: message)
            let sequence = natsMsg_GetSequence(message)
            natsMsg_Destroy(message)
            guard sequence < UInt64.max, Int64(bytes.count) <= info.size - size else {
                throw NATSError(
                    operation: "object \(bucket)/\(name)", status: NATS_ERR, detail: "more bytes arrive than its description's \(info.size): refused")
            }
            nextSequence = sequence + 1
            digest.update(bytes)
            try handle.write(contentsOf: Data(bytes))
            size += Int64(bytes.count)
            progress(size, info.size)
        }
        let received = "SHA-256=" + Self.base64URL(digest.finish())
        guard size == info.size, received == info.digest else {
            throw NATSError(
                operation: "object \(bucket)/\(name)", status: NATS_ERR,
                detail: "received \(size) bytes with digest \(received); its description says \(info.size) bytes, \(info.digest)")
        }
        return info
    }

    // MARK: plumbing

    private func metaSubject(_ name: String) -> String { "$O.\(bucket).M.\(Self.base64URL(Array(name.utf8)))" }

    private func purge(_ subject: String) throws(NATSError) {
        var options = jsOptions()
        jsOptions_Init(&options)
        let cSubject = strdup(subject)
        defer { free(cSubject) }
        options.Stream.Purge.Subject = UnsafePointer(cSubject)
        var code = jsErrCode(rawValue: 0)
        let status = js_PurgeStream(connection.jetStream, stream, &options, &code)
        guard status == NATS_OK else { throw NATSError(operation: "purge \(subject)", status: status, jetStreamCode: Int(code.rawValue)) }
    }

    private static func data(of message: OpaquePointer) -> [UInt8] {
        let length = Int(natsMsg_GetDataLength(message))
        return natsMsg_GetData(message).map { Array(UnsafeRawBufferPointer(start: $0, count: length)) } ?? []
    }

    /// Go's `base64.URLEncoding` (URL alphabet, with padding), which the layout uses for names and digests.
    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }

    private static func newNUID() -> String {
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        return String((0..<22).map { _ in alphabet.randomElement()! })
    }

    private static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}
