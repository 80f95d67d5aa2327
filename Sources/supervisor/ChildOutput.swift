import Logs

#if canImport(Glibc)
import SystemCalls
import Glibc
#endif

/// The embedded nats-server's standard output and error, read from a pipe by the supervisor's loop: every
/// line parsed (`NATSServerLogLine`) and emitted again in the node's format (JSON when `format = "json"`,
/// journald priorities from its level), so a node has one log stream in one format. The last error or fatal
/// line is kept: it is the reason said with the server's exit ("address already in use").
///
/// A worker's output (`worker`) goes the same way: its own log lines pass through unchanged, any other line
/// (a crash report) is emitted as the worker's at level error (`WorkerOutputLine`); the line saying why it
/// crashed is kept as its last words.
final class ChildOutput {
    enum Source { case nats, worker(json: Bool) }

    let fd: Int32
    let pid: Int32
    let source: Source
    private var splitter: LineSplitter
    private let handler: LineLogHandler
    /// The last `[ERR]`/`[FTL]` line (or unparsed line of nats-server's own) seen; for a worker, its
    /// foreign line that says why it crashed (else the first foreign line).
    private(set) var lastFailure: String?

    /// A pipe whose write end is for the child: the read end is non-blocking and close-on-exec.
    static func makePipe() throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        // pipe + FD_CLOEXEC (pipe2 is not exposed to Swift): only the supervisor's loop thread spawns children.
        guard Glibc.pipe(&ends) == 0 else { throw SupervisorError(.spawn, "cannot make a pipe for a child's output: \(SystemError.reason(errno))") }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(ends[0], F_SETFL, fcntl(ends[0], F_GETFL) | O_NONBLOCK)
        return (ends[0], ends[1])
    }

    init(fd: Int32, pid: Int32, source: Source, handler: LineLogHandler) {
        self.fd = fd
        self.pid = pid
        self.source = source
        self.handler = handler
        switch source {
        case .nats: splitter = LineSplitter()
        case .worker: splitter = LineSplitter(limit: WorkerOutputLine.maximumBytes)
        }
    }

    /// Reads what is there (at most 1 MiB per call, so a chatty server cannot hold the loop); returns false
    /// once the child closed its end (then the descriptor is closed here).
    func drain() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65536)
        for _ in 0..<16 {
            let n = read(fd, &buffer, buffer.count)
            if n > 0 {
                for line in splitter.feed(buffer[0..<n]) { emit(line) }
                continue
            }
            if n < 0, errno == EINTR { continue }
            if n < 0, errno == EAGAIN || errno == EWOULDBLOCK { return true }
            if let rest = splitter.finish() { emit(rest) }
            close(fd)
            return false
        }
        return true
    }

    private func emit(_ bytes: [UInt8]) {
        guard case .worker(let json) = source else { return emitServerLine(bytes) }
        switch WorkerOutputLine(bytes, json: json, cut: bytes.count >= WorkerOutputLine.maximumBytes) {
        case .ours(let line):
            handler.passThrough(line)
        case .foreign(let text):
            guard !text.trimmingSpaces.isEmpty else { return }
            if lastFailure == nil || (WorkerOutputLine.saysWhy(text) && !WorkerOutputLine.saysWhy(lastFailure!)) { lastFailure = text }
            handler.relay(foreign: text, level: WorkerOutputLine.foreignLevel, pid: pid)
        }
    }

    private func emitServerLine(_ bytes: [UInt8]) {
        let line = NATSServerLogLine(bytes)
        guard !line.text.trimmingSpaces.isEmpty else { return }  // the JetStream banner's blank lines
        if line.isFailure { lastFailure = line.text }
        handler.relay(line, pid: pid)
    }
}

private extension String {
    var trimmingSpaces: Substring {
        var text = Substring(self)
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return text
    }
}
