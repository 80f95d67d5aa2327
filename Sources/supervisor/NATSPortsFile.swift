import Foundation
import HarmonyConfig

/// The ports file the embedded nats-server writes into the run directory once it listens
/// (`nats-server_<pid>.ports`, JSON): named after the server's pid, so one left by an earlier server is
/// never mistaken for the running one's.
enum NATSPortsFile {
    static func path(runDirectory: String, pid: Int32) -> String { runDirectory + "/nats-server_\(pid).ports" }

    /// The client port the server with `pid` listens on, once it wrote its file.
    static func clientPort(runDirectory: String, pid: Int32) -> Int? { port("nats", runDirectory: runDirectory, pid: pid) }

    /// Where its monitoring endpoint listens, as it says (none without one); `EmbeddedServerMachine.probeAddress`
    /// chooses the one probed.
    static func monitoringAddresses(runDirectory: String, pid: Int32) -> [HostPort] { hostPorts("monitoring", runDirectory: runDirectory, pid: pid) }

    private static func port(_ kind: String, runDirectory: String, pid: Int32) -> Int? {
        hostPorts(kind, runDirectory: runDirectory, pid: pid).first?.port
    }

    private static func hostPorts(_ kind: String, runDirectory: String, pid: Int32) -> [HostPort] {
        guard let data = FileManager.default.contents(atPath: path(runDirectory: runDirectory, pid: pid)), data.count <= 1 << 16,
            let ports = try? JSONDecoder().decode([String: [String]].self, from: data)
        else { return [] }
        return (ports[kind] ?? []).compactMap { HostPort(parsing: $0.split(separator: "/").last.map(String.init) ?? "") }
    }

    /// Pids of the servers that left a ports file in the run directory.
    static func serverPIDs(runDirectory: String) -> [Int32] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: runDirectory)) ?? []
        return files.compactMap { file in
            guard file.hasPrefix("nats-server_"), file.hasSuffix(".ports") else { return nil }
            return Int32(file.dropFirst("nats-server_".count).dropLast(".ports".count))
        }
    }
}
