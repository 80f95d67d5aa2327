import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    /// The database in a sticky shared directory (as `/tmp` is): another local user, made for the test with
    /// `useradd`, plants what the node would otherwise take as its own — a lock file made first (naming a
    /// run directory of theirs), a lock held on the node's lock file, a JetStream store directory with mode
    /// 0777. Each is refused at start with a message naming the path and its owner, or is harmless. Needs
    /// root (useradd, runuser); skipped otherwise.
    @Suite(.serialized, .enabled(if: geteuid() == 0, "needs root to add a throwaway user (useradd) and act as it (runuser)"))
    struct SharedDirectory {
        /// A throwaway user, removed at the end.
        final class OtherUser {
            let name = "hlt\(UInt32.random(in: 100_000...999_999))"
            init() throws {
                let added = try runCommand("/usr/sbin/useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
                guard added.status == 0 else { throw TestFailure("useradd: \(added.output)") }
            }
            deinit { _ = try? runCommand("/usr/sbin/userdel", [name]) }

            /// Runs `script` with sh as this user.
            @discardableResult
            func run(_ script: String) throws -> (status: Int32, output: String) {
                try runCommand("/usr/sbin/runuser", ["-u", name, "--", "/bin/sh", "-c", script])
            }
        }

        /// A sticky directory everyone can write, like /tmp, with the node's database in it.
        static func sharedDirectory(_ directory: TemporaryDirectory) throws -> String {
            chmod(directory.path, 0o755)
            let shared = directory.path + "/shared"
            try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: false)
            chmod(shared, 0o1777)
            try makeDatabase(shared + "/node1.db", "PRAGMA journal_mode=WAL; CREATE TABLE kv (k INTEGER PRIMARY KEY, v);")
            return shared
        }

        static func toml() throws -> String { "[nats]\nbind_address = \"127.0.0.1:\(try freePort())\"\n" }

        /// A lock file another user made first (naming their own run directory) is not used: the node does not
        /// start, and `-save-snapshot` does not go looking for a server where that file points.
        @Test func aLockFileAnotherUserMadeIsRefused() throws {
            let user = try OtherUser()
            let directory = try TemporaryDirectory()
            let shared = try Self.sharedDirectory(directory)
            let lock = shared + "/.node1.db.harmonylite.lock"
            let planted = try user.run("mkdir -m 700 \(shared)/fake-run && printf '1\\n\(shared)/fake-run\\n' > \(lock) && chmod 666 \(lock)")
            #expect(planted.status == 0, "\(planted.output)")
            let node = try NodeUnderTest(toml: try Self.toml(), directory: directory, database: shared + "/node1.db")
            defer { _ = node.terminate() }
            #expect(node.waitForExit(timeout: 30) != nil, "the node started on another user's lock file")
            #expect(node.log.contains(lock) && node.log.contains("belongs to \(user.name)"), "\(node.log.suffix(2000))")
            let saved = try runCommand(Binaries.supervisor, ["-config", node.configPath, "-save-snapshot"])
            #expect(saved.status != 0)
            #expect(saved.output.contains("belongs to \(user.name)"), "\(saved.output)")
        }

        /// Another user cannot hold a lock on the node's lock file to keep the node from starting: the file is
        /// the node's, mode 0600, and cannot be opened by anyone else.
        @Test func anotherUserCannotHoldTheNodesLock() throws {
            let user = try OtherUser()
            let directory = try TemporaryDirectory()
            let shared = try Self.sharedDirectory(directory)
            let toml = try Self.toml()
            var node = try NodeUnderTest(toml: toml, directory: directory, database: shared + "/node1.db")
            try node.waitUntilReady()
            #expect(node.terminate() == 0)
            let lock = shared + "/.node1.db.harmonylite.lock"
            // flock(1) as the other user, in the background, for 60 s (if it can open the file at all).
            let holder = Process()
            holder.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
            holder.arguments = ["-u", user.name, "--", "/usr/bin/flock", "--exclusive", "--nonblock", lock, "/bin/sleep", "60"]
            let output = Pipe()
            holder.standardOutput = output
            holder.standardError = output
            try holder.run()
            defer {
                if holder.isRunning { kill(holder.processIdentifier, SIGKILL) }
                holder.waitUntilExit()
            }
            Thread.sleep(forTimeInterval: 1)
            node = try NodeUnderTest(toml: toml, directory: directory, database: shared + "/node1.db")
            defer { _ = node.terminate() }
            try node.waitUntilReady()
            #expect(!node.log.contains("another harmonylite process"), "\(node.log.suffix(2000))")
        }

        /// A JetStream store directory another user made, mode 0777, is refused (nats-server would keep the
        /// node's streams where that user can rewrite them).
        @Test func aStoreDirectoryAnotherUserMadeIsRefused() throws {
            let user = try OtherUser()
            let directory = try TemporaryDirectory()
            let shared = try Self.sharedDirectory(directory)
            let planted = try user.run("mkdir -m 777 \(shared)/nats && chmod 777 \(shared)/nats")
            #expect(planted.status == 0, "\(planted.output)")
            let node = try NodeUnderTest(toml: try Self.toml(), directory: directory, database: shared + "/node1.db")
            defer { _ = node.terminate() }
            #expect(node.waitForExit(timeout: 30) != nil, "the node started with another user's JetStream store directory")
            #expect(
                node.log.contains("\(shared)/nats") && node.log.contains("belongs to \(user.name)") && node.log.contains("mode 777"),
                "\(node.log.suffix(2000))")
        }
    }
}
