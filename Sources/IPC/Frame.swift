/// One unit on an IPC connection: `[u32 big-endian length of what follows][u8 type][body]`.
public struct Frame: Equatable, Sendable {
    public var type: UInt8
    public var body: [UInt8]

    public init(type: UInt8, body: [UInt8]) {
        self.type = type
        self.body = body
    }

    /// The largest frame a connection accepts unless told otherwise. Batches are capped well below it.
    public static let defaultMaximumSize = 16 << 20

    /// The frame as it goes on the wire.
    public var encoded: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(5 + body.count)
        appendEncoded(to: &out)
        return out
    }

    public func appendEncoded(to out: inout [UInt8]) {
        let length = UInt32(1 + body.count)
        withUnsafeBytes(of: length.bigEndian) { out.append(contentsOf: $0) }
        out.append(type)
        out.append(contentsOf: body)
    }
}

/// Cuts a byte stream into frames. Pure: feed it bytes as they arrive, take frames out, and call `finish()`
/// at end of stream to learn whether the peer stopped mid-frame. An oversized length prefix is rejected as
/// soon as its 4 bytes arrive, so a hostile or broken peer cannot make us buffer its body.
public struct FrameDecoder {
    public let maximumFrameSize: Int
    private var buffer: [UInt8] = []
    private var start = 0

    public init(maximumFrameSize: Int = Frame.defaultMaximumSize) {
        self.maximumFrameSize = maximumFrameSize
    }

    public var bufferedByteCount: Int { buffer.count - start }

    public mutating func append(_ bytes: some Collection<UInt8>) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, or nil when more bytes are needed.
    public mutating func next() throws(IPCError) -> Frame? {
        guard bufferedByteCount >= 4 else { return nil }
        var length = 0
        for offset in 0..<4 { length = length << 8 | Int(buffer[start + offset]) }
        guard length > 0 else { throw IPCError(.emptyFrame) }
        guard length <= maximumFrameSize else {
            throw IPCError(.frameTooLarge(size: length, maximum: maximumFrameSize))
        }
        guard bufferedByteCount >= 4 + length else { return nil }
        let frame = Frame(type: buffer[start + 4], body: Array(buffer[(start + 5)..<(start + 4 + length)]))
        start += 4 + length
        compactIfWorthIt()
        return frame
    }

    /// Call at end of stream: throws if a partial frame is left over.
    public func finish() throws(IPCError) {
        if bufferedByteCount > 0 { throw IPCError(.truncatedFrame(bufferedBytes: bufferedByteCount)) }
    }

    private mutating func compactIfWorthIt() {
        if start >= 64 * 1024 && start * 2 >= buffer.count {
            buffer.removeSubrange(0..<start)
            start = 0
        }
    }
}
