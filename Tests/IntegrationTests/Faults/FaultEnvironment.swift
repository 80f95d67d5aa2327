import Foundation
import TestSupport

/// Network namespaces the fault suite creates for one run: one per node, each joined by a veth pair to a
/// bridge in a hub namespace of its own. A partition takes a node's link off the bridge; healing puts it
/// back. Names are unique per run (test process id and a random tag); every namespace is removed after.
final class FaultNetwork {
    let prefix: String
    let nodes: Int

    init(nodes: Int) throws {
        self.nodes = nodes
        prefix = "hlf\(getpid())x\(UInt16.random(in: 0...UInt16.max))"
        do {
            try Self.ip(["netns", "add", hub])
            try Self.ip(["-n", hub, "link", "add", "br0", "type", "bridge"])
            try Self.ip(["-n", hub, "link", "set", "br0", "up"])
            for index in 0..<nodes {
                try Self.ip(["netns", "add", namespace(index)])
                try Self.ip(["-n", hub, "link", "add", "h\(index)", "type", "veth", "peer", "name", "eth0", "netns", namespace(index)])
                try Self.ip(["-n", hub, "link", "set", "h\(index)", "master", "br0", "up"])
                try Self.ip(["-n", namespace(index), "addr", "add", host(index) + "/24", "dev", "eth0"])
                try Self.ip(["-n", namespace(index), "link", "set", "eth0", "up"])
                try Self.ip(["-n", namespace(index), "link", "set", "lo", "up"])
            }
        } catch {
            remove()
            throw error
        }
    }

    deinit { remove() }

    private var hub: String { prefix + "-hub" }
    func namespace(_ index: Int) -> String { prefix + "-n\(index + 1)" }
    func host(_ index: Int) -> String { "10.77.0.\(index + 1)" }

    /// Runs a program in node `index`'s namespace (nsenter execs it: the PID is the program's).
    func launcher(_ index: Int) -> [String] { ["/usr/bin/nsenter", "--net=/run/netns/\(namespace(index))", "--"] }

    func partition(_ index: Int) throws { try Self.ip(["-n", hub, "link", "set", "h\(index)", "nomaster"]) }
    func heal(_ index: Int) throws { try Self.ip(["-n", hub, "link", "set", "h\(index)", "master", "br0"]) }

    func remove() {
        for name in (0..<nodes).map(namespace) + [hub] { _ = try? runCommand("/usr/sbin/ip", ["netns", "del", name]) }
    }

    private static func ip(_ arguments: [String]) throws {
        let result = try runCommand("/usr/sbin/ip", arguments)
        guard result.status == 0 else { throw TestFailure("ip \(arguments.joined(separator: " ")): \(result.output)") }
    }
}

/// A small tmpfs the test mounts at a private path for one node's database (and so its JetStream store,
/// which lives next to it); `fill()` takes every free byte, `free()` gives them back. Unmounted after.
final class FaultDisk {
    let path: String
    private var filler: String { path + "/filler" }

    init(megabytes: Int) throws {
        var template = Array("/tmp/hlf-disk-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp failed: errno \(errno)") }
        path = String(cString: made)
        let result = try runCommand("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m,mode=0700", "hlf-disk", path])
        guard result.status == 0 else {
            rmdir(path)
            throw TestFailure("mount tmpfs on \(path): \(result.output)")
        }
    }

    deinit { unmount() }

    func unmount() {
        guard FileManager.default.fileExists(atPath: path) else { return }
        _ = try? runCommand("/usr/bin/umount", ["-l", path])
        rmdir(path)
    }

    /// Writes a file until the filesystem has no room left; returns the bytes it took.
    @discardableResult
    func fill() -> Int {
        let fd = open(filler, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var total = 0
        for size in [1 << 20, 1 << 12] {
            let buffer = [UInt8](repeating: 0x55, count: size)
            while true {
                let written = buffer.withUnsafeBytes { write(fd, $0.baseAddress, size) }
                if written <= 0 { break }
                total += written
            }
        }
        return total
    }

    func free() { unlink(filler) }

    /// Free bytes on the filesystem now.
    var available: UInt64 {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return 0 }
        return UInt64(stats.f_bavail) * UInt64(stats.f_frsize)
    }
}

/// The parent of a process, from /proc (nil once it is gone): a paused process is continued only while it
/// is still the child of the supervisor that ran it, never a process that reused its PID.
func parentPID(of pid: Int32) -> Int32? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    return fields.count > 1 ? Int32(fields[1]) : nil
}
