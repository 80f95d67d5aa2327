#if canImport(Glibc)
import SystemCalls
import Glibc
#endif

/// The paths the node trusts (its lock file, the run directory that file names, the JetStream store) must
/// be the node's own: in a directory other users can write to (a sticky `/tmp`, as the local cluster uses),
/// a path another user made first would otherwise be taken as ours — a lock file naming that user's run
/// directory (where `-save-snapshot` then met a fake server and sent it the node password), a lock file
/// that user holds a lock on, a JetStream store that user can write.
///
/// A path itself: owned by one of `owners` and writable by no one else (no write bit for others, nor for a
/// group other than the node's). Each directory above it, up to `/`: owned by one of `owners` or root, and
/// writable by others only with the sticky bit (`/tmp`: no one else can remove or rename what is ours in
/// it). Anything else refuses to start, with a message naming the path, its owner and mode, and what to do.
enum PathTrust {
    struct Refusal: Error, CustomStringConvertible {
        var path: String
        var description: String
    }

    /// Checks an open file (the lock): what it is now, not what its name points to later.
    static func checkOpen(_ fd: Int32, path: String, what: String, owners: Set<uid_t>) throws(Refusal) {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Refusal(path: path, description: "cannot stat \(what) \(path): \(SystemError.reason(errno))") }
        try check(info, path: path, what: what, owners: owners)
        try checkParents(of: path, what: what, owners: owners)
    }

    /// Checks `path` (not following a symbolic link: one is refused) and its parents; a missing path is
    /// fine when `mayBeMissing` (its parents are still checked).
    static func check(_ path: String, what: String, owners: Set<uid_t>, mayBeMissing: Bool = false) throws(Refusal) {
        var info = stat()
        if lstat(path, &info) != 0 {
            guard errno == ENOENT, mayBeMissing else {
                throw Refusal(path: path, description: "cannot stat \(what) \(path): \(SystemError.reason(errno))")
            }
        } else {
            guard info.st_mode & S_IFMT != S_IFLNK else {
                throw Refusal(path: path, description: "\(what) \(path) is a symbolic link: refusing to follow it; replace it with the real path")
            }
            try check(info, path: path, what: what, owners: owners)
        }
        try checkParents(of: path, what: what, owners: owners)
    }

    private static func check(_ info: stat, path: String, what: String, owners: Set<uid_t>) throws(Refusal) {
        guard owners.contains(info.st_uid) else {
            throw Refusal(
                path: path,
                description: "\(what) \(path) belongs to \(describe(info)), not to \(names(owners)): another user made it, "
                    + "and the node does not use it. Remove it (as root or its owner), or run the node from a directory only its user can write, and start again"
            )
        }
        guard !writableByOthers(info) else {
            throw Refusal(
                path: path,
                description: "\(what) \(path) (\(describe(info))) can be written by other users: refusing to use it. "
                    + "Run chmod go-w \(path) (or remove it) and start again")
        }
    }

    /// Each directory above `path`, up to `/`.
    private static func checkParents(of path: String, what: String, owners: Set<uid_t>) throws(Refusal) {
        var parent = path
        while let slash = parent.lastIndex(of: "/") {
            parent = slash == parent.startIndex ? "/" : String(parent[..<slash])
            var info = stat()
            guard stat(parent, &info) == 0 else {
                if errno == ENOENT { if parent == "/" { return } else { continue } }
                throw Refusal(path: parent, description: "cannot stat \(parent), above \(what) \(path): \(SystemError.reason(errno))")
            }
            guard owners.contains(info.st_uid) || info.st_uid == 0 else {
                throw Refusal(
                    path: parent,
                    description: "\(parent), above \(what) \(path), belongs to \(describe(info)), neither to \(names(owners)) "
                        + "nor to root: its owner could replace what the node keeps there. Put the node's files under directories of the node's user or root")
            }
            guard info.st_mode & S_ISVTX != 0 || !writableByOthers(info) else {
                throw Refusal(
                    path: parent,
                    description: "\(parent), above \(what) \(path) (\(describe(info))), can be written by other users "
                        + "and has no sticky bit: they could replace what the node keeps there. Run chmod go-w \(parent) (or chmod +t), "
                        + "or put the node's files elsewhere")
            }
            if parent == "/" { return }
        }
    }

    /// Write permission for others, or for a group that is not the node's own.
    private static func writableByOthers(_ info: stat) -> Bool {
        info.st_mode & S_IWOTH != 0 || (info.st_mode & S_IWGRP != 0 && info.st_gid != getegid())
    }

    private static func describe(_ info: stat) -> String {
        "\(userName(info.st_uid)) (uid \(info.st_uid)), mode \(String(info.st_mode & 0o7777, radix: 8))"
    }

    private static func names(_ owners: Set<uid_t>) -> String {
        owners.sorted().map { "\(userName($0)) (uid \($0))" }.joined(separator: " or ")
    }

    static func userName(_ uid: uid_t) -> String {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "uid \(uid)" }
        return String(cString: name)
    }

    /// Who may own the node's files for a process of this user: itself, root, and — for an operator's
    /// command run as root — the owner of the database file (the node's user).
    static func nodeOwners(databasePath: String) -> Set<uid_t> {
        var owners: Set<uid_t> = [geteuid(), 0]
        var info = stat()
        if geteuid() == 0, stat(databasePath, &info) == 0 { owners.insert(info.st_uid) }
        return owners
    }
}
