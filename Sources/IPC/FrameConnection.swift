#if canImport(Glibc)
import Glibc
import SystemCalls
#endif

/// A connected socket that speaks frames. Owns its descriptor.
///
/// Two ways to use it: the supervisor's poll loop makes it non-blocking and calls `readAvailable()` when
/// poll says readable and `flush()` when writable; a worker uses the blocking `send(_:)` and
/// `receive(timeoutMilliseconds:)`. One thread at a time.
public final class FrameConnection {
    public let fd: Int32
    private var decoder: FrameDecoder
    private var outbound: [UInt8] = []
    private var outboundStart = 0
    public private(set) var isClosed = false

    public init(fd: Int32, maximumFrameSize: Int = Frame.defaultMaximumSize) {
        self.fd = fd
        decoder = FrameDecoder(maximumFrameSize: maximumFrameSize)
    }

    deinit { close() }

    public func close() {
        guard !isClosed else { return }
        isClosed = true
        Glibc.close(fd)
    }

    public var hasPendingOutput: Bool { outboundStart < outbound.count }

    // MARK: non-blocking use

    /// Reads everything the socket has now and returns the complete frames. Throws `connectionClosed`
    /// at a clean end of stream and `truncatedFrame` when the peer left in the middle of one.
    public func readAvailable() throws(IPCError) -> [Frame] {
        var frames: [Frame] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                decoder.append(chunk[0..<n])
                while let frame = try decoder.next() { frames.append(frame) }
                if n < chunk.count { return frames }
            } else if n == 0 {
                if !frames.isEmpty { return frames }
                try decoder.finish()
                throw IPCError(.connectionClosed)
            } else if errno == EINTR {
                continue
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                return frames
            } else {
                throw .system("read")
            }
        }
    }

    /// Queues a frame; `flush()` writes it.
    public func enqueue(_ frame: Frame) {
        frame.appendEncoded(to: &outbound)
    }

    /// Writes as much queued output as the socket takes. Returns true when everything was written.
    @discardableResult
    public func flush() throws(IPCError) -> Bool {
        while outboundStart < outbound.count {
            let n = outbound.withUnsafeBytes { raw in
                write(fd, raw.baseAddress! + outboundStart, raw.count - outboundStart)
            }
            if n > 0 {
                outboundStart += n
            } else if n < 0 && errno == EINTR {
                continue
            } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                return false
            } else {
                throw .system("write")
            }
        }
        outbound.removeAll(keepingCapacity: true)
        outboundStart = 0
        return true
    }

    // MARK: blocking use

    /// Sends a frame and waits until it is written.
    public func send(_ frame: Frame) throws(IPCError) {
        enqueue(frame)
        while try !flush() { try waitFor(events: Int16(POLLOUT), timeoutMilliseconds: -1) }
    }

    /// The next frame, waiting at most `timeoutMilliseconds` (-1: forever); nil on timeout.
    public func receive(timeoutMilliseconds: Int32) throws(IPCError) -> Frame? {
        if let frame = try decoder.next() { return frame }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            guard try waitFor(events: Int16(POLLIN), timeoutMilliseconds: timeoutMilliseconds) else { return nil }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                decoder.append(chunk[0..<n])
                if let frame = try decoder.next() { return frame }
            } else if n == 0 {
                try decoder.finish()
                throw IPCError(.connectionClosed)
            } else if errno != EINTR && errno != EAGAIN {
                throw .system("read")
            }
        }
    }

    @discardableResult
    private func waitFor(events: Int16, timeoutMilliseconds: Int32) throws(IPCError) -> Bool {
        var descriptors = [pollfd(fd: fd, events: events, revents: 0)]
        while true {
            do {
                guard let ready = try Poll.wait(&descriptors, timeoutMilliseconds: timeoutMilliseconds) else { continue }
                return ready > 0
            } catch {
                throw .system("poll")
            }
        }
    }
}
