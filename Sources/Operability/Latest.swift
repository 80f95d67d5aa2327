import Synchronization

/// The newest value one thread publishes and others read (the supervisor's loop → the HTTP thread).
public final class Latest<Value: Sendable>: Sendable {
    private let value: Mutex<Value?>

    public init() { value = Mutex(nil) }

    public func set(_ newValue: Value) { value.withLock { $0 = newValue } }

    public var get: Value? { value.withLock { $0 } }
}
