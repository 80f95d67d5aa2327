import Foundation
import TestSupport
import Testing

@testable import HarmonyConfig

/// The files users copy from deploy/ must work as shipped.
@Suite struct DeployTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test func systemdUnitPassesVerification() throws {
        let directory = try TemporaryDirectory()
        let unit = try String(contentsOfFile: Self.root + "/deploy/harmonylite.service", encoding: .utf8)
        for required in [
            "Type=notify", "NotifyAccess=main", "WatchdogSec=", "Restart=on-failure", "KillMode=mixed", "User=harmonylite",
            "ProtectSystem=strict", "PrivateTmp=true", "PrivateDevices=true", "ProtectProc=invisible", "UMask=0027",
            "SystemCallFilter=@system-service", "MemoryMax=", "NoNewPrivileges=true", "ProtectHome=true", "ProtectControlGroups=true",
            "ProtectKernelModules=true", "RuntimeDirectory=harmonylite", "ExecReload=/bin/kill -HUP $MAINPID", "RestartPreventExitStatus=2 78",
        ] {
            #expect(unit.contains(required), "\(required) missing from the unit")
        }
        // verify checks that ExecStart exists: point it at the binary we built.
        let local = directory.write("harmonylite.service", unit.replacingOccurrences(of: "/usr/local/bin/harmonylite", with: Binaries.supervisor))
        let result = try runCommand("/usr/bin/systemd-analyze", ["verify", local])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "systemd-analyze complains: \(result.output)")
    }

    /// The docs say what the unit says: every `RestartPreventExitStatus` in docs/ and deploy/ is `2 78`.
    @Test func docsQuoteTheUnitsRestartPreventExitStatus() throws {
        var mentions = 0
        for folder in ["docs", "deploy"] {
            let files = try FileManager.default.subpathsOfDirectory(atPath: Self.root + "/" + folder)
            for file in files where file.hasSuffix(".md") || file.hasSuffix(".service") {
                let text = try String(contentsOfFile: Self.root + "/\(folder)/\(file)", encoding: .utf8)
                for match in text.matches(of: /RestartPreventExitStatus=([0-9 ]*)/) {
                    mentions += 1
                    #expect(match.1 == "2 78", "\(folder)/\(file): RestartPreventExitStatus=\(match.1)")
                }
            }
        }
        #expect(mentions >= 3)
    }

    /// systemd's own rating of the unit's sandbox: at most 2.0 (it was 3.5 before the hardening).
    @Test func systemdUnitExposureIsAtMostTwo() throws {
        let directory = try TemporaryDirectory()
        let unit = try String(contentsOfFile: Self.root + "/deploy/harmonylite.service", encoding: .utf8)
        let local = directory.write("harmonylite.service", unit.replacingOccurrences(of: "/usr/local/bin/harmonylite", with: Binaries.supervisor))
        let result = try runCommand("/usr/bin/systemd-analyze", ["security", "--offline=yes", "--no-pager", local])
        let level = result.output.firstMatch(of: /Overall exposure level for [^:]*: (\d+\.\d+)/).flatMap { Double($0.1) }
        let exposure = try #require(level, "\(result.output)")
        #expect(exposure <= 2.0, "\(result.output)")
    }

    @Test(arguments: ["deploy/config.toml", "deploy/local-cluster/node-1.toml", "deploy/local-cluster/node-2.toml", "deploy/local-cluster/node-3.toml"])
    func shippedConfigurationLoads(_ relativePath: String) throws {
        let directory = try TemporaryDirectory()
        let database = directory.path + "/data.db"
        try makeDatabase(database)
        var text = try String(contentsOfFile: Self.root + "/" + relativePath, encoding: .utf8)
        // Point the paths at a scratch directory; everything else is loaded as shipped.
        text = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.hasPrefix("db_path")
                ? "db_path = \"\(database)\"" : line.hasPrefix("seq_map_path") ? "seq_map_path = \"\(directory.path)/sm.cbor\"" : String(line)
        }.joined(separator: "\n")
        let file = directory.write("config.toml", text)
        let loaded = try ConfigurationLoader.load(path: file, environment: .init(defaultNodeID: { 42 }))
        #expect(loaded.configuration.dbPath == database)
        #expect(loaded.warnings.isEmpty)
    }
}
