import CSQLite

#if canImport(Glibc)
import Glibc
#endif

extension SQLiteDatabase {
    public enum CheckpointMode: Sendable {
        /// Copies what no reader still needs, without waiting for anyone (`SQLITE_CHECKPOINT_PASSIVE`).
        case passive
        /// Takes the write lock (waiting as the busy timeout allows), copies every frame and waits for the
        /// readers of the WAL to finish, so that the next commit starts it again from its beginning
        /// (`SQLITE_CHECKPOINT_RESTART`).
        case restart
    }

    /// Checkpoints the WAL; returns its frames and how many of them are in the database file now, or nil
    /// when a lock it needed stayed taken (another checkpoint, the write lock, a reader).
    public func checkpoint(_ mode: CheckpointMode) throws(SQLiteError) -> (walFrames: Int, checkpointed: Int)? {
        var frames: Int32 = -1
        var checkpointed: Int32 = -1
        let code = sqlite3_wal_checkpoint_v2(handle, "main", mode == .passive ? SQLITE_CHECKPOINT_PASSIVE : SQLITE_CHECKPOINT_RESTART, &frames, &checkpointed)
        if code == SQLITE_BUSY || code == SQLITE_LOCKED { return nil }
        guard code == SQLITE_OK else { throw SQLiteError(code: code, message: lastErrorMessage) }
        return (Int(frames), Int(checkpointed))
    }
}

/// The WAL's length as its index says, read without a connection: `mxFrame` of the WAL-index header at the
/// start of the `-shm` file (https://www.sqlite.org/walformat.html: two copies of a 48-byte header, native
/// byte order, version 3007000). A hint for when to checkpoint, never for correctness: nil when there is no
/// index, it is not initialized, or the two copies differ (a writer was changing it).
public enum WALIndex {
    public static func frames(databasePath: String) -> Int? {
        let fd = open(databasePath + "-shm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var header = [UInt32](repeating: 0, count: 24)
        let read = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 96, 0) }
        guard read == 96 else { return nil }
        return frames(header: header)
    }

    /// `mxFrame` from the index's first 96 bytes as native 32-bit words; pure.
    static func frames(header: [UInt32]) -> Int? {
        guard header.count >= 24, header[0] == 3_007_000, header[0..<12] == header[12..<24] else { return nil }
        // isInit is the byte at offset 12: the low or high byte of word 3, by byte order.
        let isInit = withUnsafeBytes(of: header[3]) { $0[0] }
        guard isInit == 1 else { return nil }
        return Int(header[4])
    }
}
