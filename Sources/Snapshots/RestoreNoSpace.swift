import Foundation
import SQLiteKit

#if canImport(Glibc)
import Glibc
#endif

/// A snapshot restore that failed for lack of disk space on the database's filesystem: the download does not
/// fit (`DownloadBound`), SQLite said `SQLITE_FULL` (error 13, `database or disk is full`), or a write
/// failed with ENOSPC. The database is unchanged, and retrying cannot help until an operator frees space:
/// the snapshotter refuses the start (`WorkerExitCode.refused`), so the node stops with status 78 instead of
/// restarting the snapshotter into the same failure.
public struct RestoreNoSpace: Error, Equatable, Sendable, CustomStringConvertible {
    /// The database restored into (its directory's filesystem is the full one).
    public var database: String
    /// The bytes free there when the failure was seen (nil: not measurable).
    public var freeBytes: UInt64?
    /// The error as the restore met it.
    public var cause: String

    public init(database: String, freeBytes: UInt64?, cause: String) {
        self.database = database
        self.freeBytes = freeBytes
        self.cause = cause
    }

    public var description: String {
        let free = freeBytes.map { ", \($0) bytes free" } ?? ""
        return "no disk space for the snapshot restore on the filesystem holding \(database)\(free) (SQLite error 13 / ENOSPC): \(cause). "
            + "Free space there, then start the node again"
    }

    /// SQLite's `SQLITE_FULL`, the primary code of every extended code it has.
    static let sqliteFull: Int32 = 13
    /// `strerror(ENOSPC)`, as the stores and the file APIs word it.
    static let noSpaceText = "No space left on device"

    /// Whether `error` says the local disk is full. A store's answer (`SnapshotError.transfer`: an HTTP body,
    /// bytes from outside) is never taken for one, whatever it says.
    public static func isDiskFull(_ error: any Error) -> Bool {
        switch error {
        case let error as SQLiteError: return error.code & 0xFF == sqliteFull
        case let error as SnapshotError: return error.kind == .noSpace || (error.kind == .storage && error.description.contains(noSpaceText))
        case let error as RestoreNoSpace: return !error.database.isEmpty
        default:
            // A local write (`FileHandle`, or a message built from `strerror(ENOSPC)`).
            let bridged = error as NSError
            if bridged.domain == NSPOSIXErrorDomain, bridged.code == Int(ENOSPC) { return true }
            if let underlying = bridged.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain, underlying.code == Int(ENOSPC) {
                return true
            }
            return "\(error)".contains(noSpaceText)
        }
    }

    /// Below this many free bytes a restore that failed writing is taken as one that ran out of space, whatever
    /// its error says (curl words a failed local write `Failure writing output to destination`).
    static let nearlyFull: UInt64 = 1 << 20

    /// Runs `body`, the restore into `database`; a disk-full failure comes out as `RestoreNoSpace`: one whose
    /// error says so, or any failure (not a refused snapshot) that left the filesystem nearly full.
    public static func naming<T>(_ database: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as RestoreNoSpace {
            throw error
        } catch {
            let free = freeBytes(near: database)
            let refused = error is SnapshotRefusal || (error as? SnapshotError)?.kind == .refused
            guard isDiskFull(error) || (!refused && free.map { $0 < nearlyFull } == true) else { throw error }
            throw RestoreNoSpace(database: database, freeBytes: free, cause: "\(error)")
        }
    }

    /// The bytes an unprivileged process may still write on the filesystem holding `path`'s directory.
    static func freeBytes(near path: String) -> UInt64? {
        let directory = (path as NSString).deletingLastPathComponent
        var info = statvfs()
        guard statvfs(directory.isEmpty ? "." : directory, &info) == 0 else { return nil }
        return UInt64(info.f_bavail) &* UInt64(info.f_frsize)
    }
}
