import Foundation
import TestSupport
import Testing

@testable import HarmonyConfig

/// With `[logging] format = "json"`, a configuration error found once the file parsed is one JSON line like
/// every other line of the node; a file that does not parse says no format, so its error is plain text.
@Suite struct ConfigurationErrorFormatTests {
    static let json = "[logging]\nformat = \"json\"\n"

    @Test func aParsedFilesFormatIsKnownAndABrokenFilesIsNot() throws {
        let directory = try TemporaryDirectory()
        let parsed = directory.write("a.toml", "node_id = 7\n" + Self.json + "[nats]\nbind_adress = \":-1\"\n")
        #expect(ConfigurationLoader.declaredLogging(path: parsed).map { "\($0.format) \($0.nodeID)" } == "json 7")
        #expect(ConfigurationLoader.declaredLogging(path: directory.write("b.toml", "db_path = \"x\n" + Self.json)) == nil, "not TOML")
        #expect(ConfigurationLoader.declaredLogging(path: directory.write("c.toml", "[logging]\nformat = \"jsonx\"\n")) == nil)
        #expect(ConfigurationLoader.declaredLogging(path: directory.write("d.toml", "node_id = 1\n")) == nil)
        #expect(ConfigurationLoader.declaredLogging(path: directory.path + "/missing.toml") == nil)
        #expect(ConfigurationLoader.declaredLogging(path: directory.write("e.toml", "[logging]\nformat = \"console\"\n"))?.format == "console")
    }

    @Test func aBadKeyInAJSONConfigurationIsOneJSONLine() throws {
        let directory = try TemporaryDirectory()
        let path = directory.write("node.toml", "db_path = \"\(directory.path)/node.db\"\nnode_id = 7\n" + Self.json + "[nats]\nbind_adress = \":-1\"\n")
        let result = try runCommand(Binaries.supervisor, ["-config", path])
        #expect(result.status == 2)
        let lines = result.output.split(separator: "\n")
        #expect(lines.count == 1, "\(result.output)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data((lines.first ?? "").utf8)) as? [String: Any], "\(result.output)")
        #expect(object["level"] as? String == "critical" && object["process"] as? String == "supervisor" && object["node_id"] as? Int == 7)
        #expect(object["message"] as? String == "configuration error: nothing was started")
        #expect(object["key"] as? String == "nats.bind_adress" && object["line"] as? String == "6" && object["file"] as? String == path)
        #expect((object["error"] as? String)?.contains("did you mean nats.bind_address?") == true, "\(object)")
    }

    @Test func aCheckFailedAfterLoadingIsOneJSONLineToo() throws {
        let directory = try TemporaryDirectory()
        let path = directory.write("node.toml", "db_path = \"\(directory.path)/node.db\"\n" + Self.json)
        let result = try runCommand(Binaries.supervisor, ["-config", path, "-cluster-addr", "127.0.0.1:6222"])
        #expect(result.status == 2)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any], "\(result.output)")
        #expect(object["key"] as? String == "-cluster-peers", "\(object)")
    }

    @Test func aFileThatDoesNotParseIsPlainText() throws {
        let directory = try TemporaryDirectory()
        let path = directory.write("node.toml", "db_path = \"unterminated\n" + Self.json)
        let result = try runCommand(Binaries.supervisor, ["-config", path])
        #expect(result.status == 2)
        #expect(result.output.hasPrefix("harmonylite: configuration error: \(path):1: not valid TOML"), "\(result.output)")
    }
}
