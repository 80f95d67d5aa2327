#if canImport(Glibc)
import SystemCalls
import Glibc
#endif

/// Everything that can go wrong on an IPC connection. Each one closes that connection; none is a crash.
public struct IPCError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: Equatable, Sendable {
        /// A length prefix of 0: a frame must carry at least its type byte.
        case emptyFrame
        /// The length prefix announces more than the connection accepts (checked before buffering the body).
        case frameTooLarge(size: Int, maximum: Int)
        /// The peer closed the connection in the middle of a frame.
        case truncatedFrame(bufferedBytes: Int)
        /// A type byte this protocol version does not define.
        case unknownMessageType(UInt8)
        /// The body does not decode as the message its type byte announces.
        case malformedBody(messageType: UInt8, reason: String)
        /// The first frame was not the expected handshake, or its version is not spoken here.
        case handshakeFailed(String)
        /// The peer runs as another user (SO_PEERCRED).
        case peerNotAllowed(uid: UInt32)
        /// The peer closed the connection cleanly.
        case connectionClosed
        /// A socket call failed.
        case system(call: String, errno: Int32)
        /// A socket path longer than sockaddr_un can hold.
        case pathTooLong(String)
    }

    public let kind: Kind

    public init(_ kind: Kind) { self.kind = kind }

    static func system(_ call: String, _ code: Int32 = errno) -> IPCError { IPCError(.system(call: call, errno: code)) }

    public var description: String {
        switch kind {
        case .emptyFrame: return "IPC frame with length 0 (a frame needs at least its type byte)"
        case .frameTooLarge(let size, let maximum):
            return "IPC frame of \(size) bytes exceeds the maximum of \(maximum) bytes"
        case .truncatedFrame(let buffered):
            return "IPC connection closed in the middle of a frame (\(buffered) bytes buffered)"
        case .unknownMessageType(let type): return "unknown IPC message type 0x\(String(type, radix: 16))"
        case .malformedBody(let type, let reason):
            return "malformed body for IPC message type 0x\(String(type, radix: 16)): \(reason)"
        case .handshakeFailed(let reason): return "IPC handshake failed: \(reason)"
        case .peerNotAllowed(let uid): return "IPC peer runs as uid \(uid), only our own uid is accepted"
        case .connectionClosed: return "IPC connection closed by the peer"
        case .system(let call, let code): return "\(call): \(SystemError.reason(code))"
        case .pathTooLong(let path): return "socket path is longer than 107 bytes: \(path)"
        }
    }
}
