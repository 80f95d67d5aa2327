import CPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Hands items from other threads (libnats callbacks, fetcher threads) to a poll loop: `push` from any
/// thread; the loop polls `wakeDescriptor` (an eventfd) and `drain`s everything waiting, in order.
public final class EventQueue<Element: Sendable>: Sendable {
    private let items = Mutex<[Element]>([])
    public let wakeDescriptor: Int32

    public init() {
        wakeDescriptor = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        precondition(wakeDescriptor >= 0, "eventfd failed: \(SystemError.reason(errno))")
    }

    deinit { close(wakeDescriptor) }

    public func push(_ element: Element) { push(contentsOf: [element]) }

    public func push(contentsOf elements: [Element]) {
        items.withLock { $0.append(contentsOf: elements) }
        var one: UInt64 = 1
        _ = write(wakeDescriptor, &one, 8)
    }

    public func drain() -> [Element] {
        var counter: UInt64 = 0
        _ = read(wakeDescriptor, &counter, 8)
        return items.withLock { taken in
            defer { taken.removeAll() }
            return taken
        }
    }
}
