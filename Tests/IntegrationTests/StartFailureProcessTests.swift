import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    /// The embedded nats-server cannot start with this configuration: after three attempts in a row the node
    /// stops with exit status 2 (a configuration error, `RestartPreventExitStatus=2 78`), saying what holds the
    /// port, instead of restarting the server until its budget runs out and exiting 1 (which systemd restarts
    /// forever).
    @Suite(.serialized) struct StartFailures {
        @Test func aClientPortAnotherProcessHoldsStopsTheStartWithStatus2NamingTheHolder() throws {
            let port = try freePort()
            let holder = try Self.listen(port: port)
            defer { close(holder) }
            let node = try NodeUnderTest(toml: "[nats]\nbind_address = \"127.0.0.1:\(port)\"\n[workers.nats]\nrestart_backoff_initial = 50\n")
            let status = node.waitForExit(timeout: 30)
            let log = node.log
            #expect(status == 2, "exit status \(String(describing: status)); log:\n\(log.suffix(4000))")
            let lines = supervisorLines(log, "child cannot start with this configuration", ["child": "nats", "exit_status": "2"])
            #expect(lines.count == 1, "\(log.suffix(4000))")
            let line = lines.first ?? ""
            #expect(line.contains("port \(port) (127.0.0.1:\(port)) is in use by another process (") && line.contains("pid \(getpid()))"), "\(line)")
            #expect(line.contains("nats.bind_address"))
            let restarts = supervisorLines(log, SupervisorMessage.restarting, ["child": "nats"]).count
            #expect(restarts == 2, "tried 3 times in all, then given up: \(restarts) restart(s)")
            #expect(node.notify.all.contains { $0.text.contains("STATUS=misconfigured: nats; port \(port)") })
        }

        @Test func aClusterAddressWithoutPeersIsAConfigurationErrorBeforeAnythingStarts() throws {
            let node = try NodeUnderTest(arguments: ["-cluster-addr", "127.0.0.1:\(try freePort())"])
            let status = node.waitForExit(timeout: 30)
            #expect(status == 2, "\(node.log)")
            #expect(node.log.contains("configuration error: -cluster-addr 127.0.0.1:") && node.log.contains("-cluster-peers is empty"), "\(node.log)")
            #expect(!node.log.contains("[nats-server]"), "nothing started")
        }

        /// A socket listening on 127.0.0.1:`port` in this process.
        static func listen(port: Int) throws -> Int32 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard fd >= 0, bound == 0, Glibc.listen(fd, 8) == 0 else {
                close(fd)
                throw TestFailure("cannot listen on 127.0.0.1:\(port)")
            }
            return fd
        }
    }
}
