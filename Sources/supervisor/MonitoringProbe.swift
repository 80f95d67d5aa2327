import Supervision

#if canImport(Glibc)
import SystemCalls
import Glibc
#endif

/// One `GET` of the embedded server's monitoring endpoint on loopback, non-blocking, driven by the
/// supervisor's poll loop: `pollEvents` says what to wait for, `advance` makes progress when the descriptor
/// is ready, `result` is set once the probe is over. What the answer means is `EmbeddedServerProbe`'s call.
final class MonitoringProbe {
    typealias Result = EmbeddedServerMachine.ProbeResult

    /// The server's pid the probe is for: an answer counts only for that server.
    let pid: Int32
    /// What is asked: `EmbeddedServerProbe.path` (liveness) or `EmbeddedServerProbe.metaCurrencyPath`.
    let path: String
    private(set) var fd: Int32 = -1
    private(set) var result: Result?
    private var request: [UInt8]
    private var response: [UInt8] = []
    private var connected = false

    /// `host`: an IPv4 address (the ports file's).
    init(pid: Int32, host: String, port: Int, path: String = EmbeddedServerProbe.path) {
        self.pid = pid
        self.path = path
        request = Array("GET \(path) HTTP/1.0\r\nHost: \(host)\r\n\r\n".utf8)
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0, let port = UInt16(exactly: port) else {
            finish(.failed("socket: \(SystemError.reason(errno))"))
            return
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            finish(.failed("not an IPv4 address: \(host)"))
            return
        }
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if status == 0 {
            connected = true
        } else if errno != EINPROGRESS {
            finish(.failed("connect to 127.0.0.1:\(port): \(SystemError.reason(errno))"))
        }
    }

    deinit { close() }

    var pollEvents: Int16 { request.isEmpty ? Int16(POLLIN) : Int16(POLLOUT) }

    /// Progress after poll said the descriptor is ready.
    func advance() {
        guard result == nil else { return }
        if !connected {
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0 else { return finish(.failed("connect: \(SystemError.reason(error))")) }
            connected = true
        }
        if !request.isEmpty {
            let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno != EAGAIN && errno != EINTR { finish(.failed("send: \(SystemError.reason(errno))")) }
                return
            }
            request.removeFirst(sent)
            return
        }
        var buffer = [UInt8](repeating: 0, count: 16384)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count < 0 {
            if errno != EAGAIN && errno != EINTR { finish(.failed("recv: \(SystemError.reason(errno))")) }
        } else if count == 0 {
            finish(.answered(response))
        } else {
            response += buffer[0..<count]
            if response.count > EmbeddedServerProbe.maximumResponseBytes {
                finish(.failed("answer longer than \(EmbeddedServerProbe.maximumResponseBytes) bytes"))
            }
        }
    }

    private func finish(_ result: Result) {
        self.result = result
        close()
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }
}
