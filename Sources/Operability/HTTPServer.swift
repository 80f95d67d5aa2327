import Foundation
import HarmonyConfig

#if canImport(Glibc)
import SystemCalls
import Glibc
#endif

/// `/metrics` and `/health`, served by one dedicated thread of the supervisor with its own poll loop.
///
/// Why a thread of the supervisor: the supervisor is the one process that sees every worker (their
/// heartbeats' counters, pids, restarts), so it holds the numbers; serving them from its own poll loop would
/// let a slow or stuck client delay restarts, heartbeat checks and systemd's watchdog, and a worker of its
/// own would need every number shipped to it. This thread only reads what the loop publishes (the
/// Prometheus registry, which is thread-safe, and a `NodeView` behind a lock) and never blocks on a client:
/// sockets are non-blocking, a request head is at most 8 KiB, every connection is closed after one answer
/// or after `timeout` seconds, and at most `maximumConnections` are open at once (more are refused).
public final class HTTPServer: Sendable {
    public typealias Handler = @Sendable (HTTPRequest) -> HTTPResponse

    public static let timeout = 5.0
    public static let maximumConnections = 64

    private let listeners: [Int32]
    private let handlers: [Handler]
    private let wake: (read: Int32, write: Int32)

    /// Listens on every address (`bind` as the configuration has it) now, so a port in use is an error at
    /// start; serves once `start` is called.
    public init(endpoints: [(bind: String, handler: Handler)]) throws(HTTPServerError) {
        var listeners: [Int32] = []
        for endpoint in endpoints {
            do {
                listeners.append(try Self.listen(endpoint.bind))
            } catch {
                listeners.forEach { close($0) }
                throw error
            }
        }
        self.listeners = listeners
        handlers = endpoints.map(\.handler)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            listeners.forEach { close($0) }
            throw HTTPServerError(bind: "", reason: "pipe: \(SystemError.reason(errno))")
        }
        fds.forEach(Self.makeNonBlocking)
        wake = (fds[0], fds[1])
    }

    /// The port each endpoint listens on (the configured one, or the one the kernel chose for port 0).
    public var ports: [Int] {
        listeners.map { fd in
            var address = sockaddr_in6()
            var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            return Int(UInt16(bigEndian: address.sin6_port))
        }
    }

    public func start() {
        let thread = Thread { [self] in serve() }
        thread.name = "http"
        thread.start()
    }

    /// Ends the thread (at its next wake-up) and closes the listeners.
    public func stop() {
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
    }

    private final class Connection {
        let fd: Int32
        let endpoint: Int
        let deadline: Double
        var input: [UInt8] = []
        var output: [UInt8]?
        var written = 0

        init(fd: Int32, endpoint: Int, deadline: Double) {
            self.fd = fd
            self.endpoint = endpoint
            self.deadline = deadline
        }
    }

    private func serve() {
        var connections: [Int32: Connection] = [:]
        defer {
            for fd in connections.keys { close(fd) }
            listeners.forEach { close($0) }
            close(wake.read)
            close(wake.write)
        }
        while true {
            var descriptors = [pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
            descriptors += listeners.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let open = Array(connections.values)
            descriptors += open.map { pollfd(fd: $0.fd, events: Int16($0.output == nil ? POLLIN : POLLOUT), revents: 0) }
            _ = try? Poll.wait(&descriptors, timeoutMilliseconds: 250)
            if descriptors[0].revents != 0 { return }
            let now = Self.monotonic()
            for (index, listener) in listeners.enumerated() where descriptors[index + 1].revents != 0 {
                while case let fd = accept(listener, nil, nil), fd >= 0 {
                    Self.makeNonBlocking(fd)
                    guard connections.count < Self.maximumConnections else {
                        close(fd)
                        continue
                    }
                    connections[fd] = Connection(fd: fd, endpoint: index, deadline: now + Self.timeout)
                }
            }
            for (offset, connection) in open.enumerated() {
                let events = descriptors[offset + 1 + listeners.count].revents
                if events != 0 && !service(connection) || now >= connection.deadline {
                    close(connection.fd)
                    connections[connection.fd] = nil
                }
            }
        }
    }

    /// Reads, answers, writes; false once the connection is done with.
    private func service(_ connection: Connection) -> Bool {
        if connection.output == nil {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = read(connection.fd, &buffer, buffer.count)
            if count == 0 { return false }
            if count < 0 { return errno == EAGAIN || errno == EINTR }
            connection.input += buffer[..<count]
            switch HTTPRequest.parse(connection.input) {
            case .incomplete:
                return true
            case .bad(let status, let reason):
                connection.output = HTTPResponse.text(status, reason).serialized()
            case .request(let request):
                let response = handlers[connection.endpoint](request)
                connection.output = response.serialized(headOnly: request.method == "HEAD")
            }
        }
        guard let output = connection.output else { return true }
        let count = output.withUnsafeBytes { write(connection.fd, $0.baseAddress! + connection.written, output.count - connection.written) }
        if count < 0 { return errno == EAGAIN || errno == EINTR }
        connection.written += count
        return connection.written < output.count
    }

    /// A non-blocking TCP listener on `bind` (`host:port`; an empty host listens on every address, as
    /// HarmonyLite's `:3010` did).
    static func listen(_ bind: String) throws(HTTPServerError) -> Int32 {
        guard let target = HostPort(parsing: bind), target.port >= 0 else { throw HTTPServerError(bind: bind, reason: "not host:port") }
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        let host = target.host.isEmpty ? nil : target.host
        let status = getaddrinfo(host, String(target.port), &hints, &found)
        guard status == 0, let found else { throw HTTPServerError(bind: bind, reason: SystemError.addressLookupReason(status)) }
        defer { freeaddrinfo(found) }
        // With no host, prefer the IPv6 wildcard (which also takes IPv4) when the machine has IPv6.
        var candidates: [UnsafeMutablePointer<addrinfo>] = []
        var next: UnsafeMutablePointer<addrinfo>? = found
        while let entry = next {
            candidates.append(entry)
            next = entry.pointee.ai_next
        }
        if host == nil { candidates.sort { $0.pointee.ai_family == AF_INET6 && $1.pointee.ai_family != AF_INET6 } }
        var lastError = "no address"
        for entry in candidates {
            let fd = socket(entry.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { continue }
            makeNonBlocking(fd)
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if entry.pointee.ai_family == AF_INET6 {
                var zero: Int32 = 0
                setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, socklen_t(MemoryLayout<Int32>.size))
            }
            if Glibc.bind(fd, entry.pointee.ai_addr, entry.pointee.ai_addrlen) == 0 && Glibc.listen(fd, 64) == 0 { return fd }
            lastError = SystemError.reason(errno)
            close(fd)
        }
        throw HTTPServerError(bind: bind, reason: lastError)
    }

    /// Non-blocking and closed on exec (the supervisor's children must not inherit a listener).
    private static func makeNonBlocking(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    private static func monotonic() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}

public struct HTTPServerError: Error, CustomStringConvertible, Sendable {
    public var bind: String
    public var reason: String
    public var description: String { "cannot listen on \(bind): \(reason)" }
}
