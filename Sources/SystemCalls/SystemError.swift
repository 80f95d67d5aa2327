#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: which call, and the `errno` it left. The one place that turns an error number
/// into words, so every module reports a failed call the same way (`open: No such file or directory`).
public struct SystemError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The call that failed, as its manual page names it (`open`, `poll`, `inotify_add_watch`).
    public let call: String
    /// The `errno` value it left.
    public let code: Int32

    public init(call: String, code: Int32) {
        self.call = call
        self.code = code
    }

    /// The error `call` just left in `errno`. Read it right after the failing call: any other call may change it.
    public static func last(_ call: String) -> SystemError { SystemError(call: call, code: errno) }

    /// The C library's words for the error number alone (`No such file or directory`).
    public var reason: String { SystemError.reason(code) }

    public var description: String { "\(call): \(reason)" }

    /// Whether the call failed because the file or directory is missing.
    public var isMissing: Bool { code == ENOENT }

    /// The C library's words for an error number.
    public static func reason(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// The resolver's words for a `getaddrinfo` status (it has its own numbers, not `errno`'s).
    public static func addressLookupReason(_ status: Int32) -> String { String(cString: gai_strerror(status)) }
}
