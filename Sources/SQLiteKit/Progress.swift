import CSQLite

extension SQLiteDatabase {
    /// Runs `body` with SQLite's progress handler calling `tick` every `instructions` virtual-machine steps
    /// (a long statement, `VACUUM INTO` of a large database, say): `tick` decides itself whether it is time
    /// to say something. It must not use this connection. The handler is removed afterwards.
    public func reportingProgress<T>(every instructions: Int32 = 1000, _ tick: @escaping () -> Void, _ body: () throws -> T) rethrows -> T {
        let box = ProgressTick(tick)
        let context = Unmanaged.passRetained(box).toOpaque()
        sqlite3_progress_handler(handle, instructions, progressCallback, context)
        defer {
            sqlite3_progress_handler(handle, 0, nil, nil)
            Unmanaged<ProgressTick>.fromOpaque(context).release()
        }
        return try body()
    }
}

final class ProgressTick {
    let tick: () -> Void
    init(_ tick: @escaping () -> Void) { self.tick = tick }
}

/// Never interrupts the statement (0).
private func progressCallback(_ context: UnsafeMutableRawPointer?) -> Int32 {
    guard let context else { return 0 }
    Unmanaged<ProgressTick>.fromOpaque(context).takeUnretainedValue().tick()
    return 0
}
