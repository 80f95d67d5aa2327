import IPC

#if canImport(Glibc)
import Glibc
#endif

/// A worker's connection to the broker's data socket: connects (and reconnects after the broker
/// restarted), says who it is, and moves `DataMessage`s without blocking the worker loop.
public final class BrokerChannel {
    private let path: String
    private let role: DataMessage.Role
    private var connection: FrameConnection?

    public init(runDirectory: String, role: DataMessage.Role) {
        path = runDirectory + "/" + ControlChannel.dataSocketName
        self.role = role
    }

    public var isConnected: Bool { connection != nil }

    /// Connects if not connected; true when a new connection was just made (the caller resends its state).
    public func connectIfNeeded() -> Bool {
        guard connection == nil else { return false }
        guard let fd = try? UnixSocket.connect(path: path) else { return false }
        let fresh = FrameConnection(fd: fd)
        do {
            try fresh.send(DataMessage.hello(role: role).frame)
            try UnixSocket.setNonBlocking(fd)
        } catch {
            return false
        }
        connection = fresh
        return true
    }

    /// The descriptor to poll, if connected.
    public var descriptor: pollfd? {
        connection.map { pollfd(fd: $0.fd, events: Int16(POLLIN) | ($0.hasPendingOutput ? Int16(POLLOUT) : 0), revents: 0) }
    }

    /// Queues and writes what the socket takes now; false (and disconnected) when the broker is gone.
    @discardableResult
    public func send(_ message: DataMessage) -> Bool {
        guard let connection else { return false }
        connection.enqueue(message.frame)
        do {
            try connection.flush()
            return true
        } catch {
            disconnect()
            return false
        }
    }

    /// Everything that arrived; the error that closed the connection, if it closed.
    public func receive() -> (messages: [DataMessage], closedBecause: IPCError?) {
        guard let connection else { return ([], nil) }
        do {
            try connection.flush()
            return (try connection.readAvailable().map { frame throws(IPCError) in try DataMessage(frame: frame) }, nil)
        } catch {
            disconnect()
            return ([], error)
        }
    }

    public func disconnect() {
        connection?.close()
        connection = nil
    }
}
