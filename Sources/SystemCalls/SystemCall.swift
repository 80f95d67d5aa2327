#if canImport(Glibc)
import Glibc
#endif

/// Runs a system call that returns -1 and sets `errno` on failure, again while it is interrupted by a
/// signal (`EINTR`), and returns its result or throws the `SystemError` it left.
@discardableResult
public func systemCall(_ name: String, _ body: () -> Int32) throws(SystemError) -> Int32 {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = errno
        if code != EINTR { throw SystemError(call: name, code: code) }
    }
}

/// `systemCall` for the calls that return a byte count (`read`, `write`, `send`, `recv`).
@discardableResult
public func systemCall(_ name: String, _ body: () -> Int) throws(SystemError) -> Int {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = errno
        if code != EINTR { throw SystemError(call: name, code: code) }
    }
}
