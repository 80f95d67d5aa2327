import TOMLKit

#if canImport(Glibc)
import SystemCalls
import Glibc
#endif

/// What the command line adds to or overrides in the file.
public struct CommandLineOverrides: Sendable {
    public var nodeID: UInt64?
    public var clusterAddress: String?
    /// Comma-separated route URLs, as `-cluster-peers` takes them.
    public var clusterPeers: String?
    /// Comma-separated leaf remote URLs, as `-leaf-servers` takes them.
    public var leafServers: String?

    public init(nodeID: UInt64? = nil, clusterAddress: String? = nil, clusterPeers: String? = nil, leafServers: String? = nil) {
        self.nodeID = nodeID
        self.clusterAddress = clusterAddress
        self.clusterPeers = clusterPeers
        self.leafServers = leafServers
    }
}

public struct LoadedConfiguration: Sendable {
    public var configuration: Configuration
    /// Things that are allowed but probably not what the user meant (logged at start).
    public var warnings: [String]
}

/// Reads the TOML file, applies the command line, fills the derived defaults and checks everything.
/// Any problem is a `ConfigurationError` naming the key (and line), thrown before anything starts.
public enum ConfigurationLoader {
    public struct Environment: Sendable {
        public var temporaryDirectory: String
        public var currentDirectory: String
        public var defaultNodeID: @Sendable () -> UInt64

        public init(
            temporaryDirectory: String = ProcessEnvironment.temporaryDirectory,
            currentDirectory: String = FilePaths.currentDirectory(),
            defaultNodeID: @escaping @Sendable () -> UInt64 = NodeIdentity.machineDerived
        ) {
            self.temporaryDirectory = temporaryDirectory
            self.currentDirectory = currentDirectory
            self.defaultNodeID = defaultNodeID
        }
    }

    /// `path` nil or empty: no file, built-in defaults (HarmonyLite's `-config ""`). A path that does not
    /// exist is an error (HarmonyLite silently fell back to defaults).
    public static func load(
        path: String?,
        overrides: CommandLineOverrides = .init(),
        environment: Environment = .init()
    ) throws(ConfigurationError) -> LoadedConfiguration {
        var config = Configuration(dbPath: environment.temporaryDirectory + "/harmonylite.db", nodeID: 0)
        var explicitSeqMap = false
        if let path, !path.isEmpty {
            let text = try readFile(path)
            let setKeys = try apply(toml: text, file: path, to: &config)
            explicitSeqMap = setKeys.contains("seq_map_path") && !config.seqMapPath.isEmpty
        }
        return try resolve(config, explicitSeqMap: explicitSeqMap, overrides: overrides, environment: environment)
    }

    /// `-check-config`: the configuration as `load` makes it, or every problem found — each key's (an
    /// unknown key, a wrong type: all of them, not only the first), else the first check of the whole.
    public static func check(
        path: String,
        overrides: CommandLineOverrides = .init(),
        environment: Environment = .init()
    ) -> (loaded: LoadedConfiguration?, problems: [ConfigurationError]) {
        var config = Configuration(dbPath: environment.temporaryDirectory + "/harmonylite.db", nodeID: 0)
        do {
            let text = try readFile(path)
            var problems: [ConfigurationError] = []
            let setKeys = try apply(toml: text, file: path, to: &config, problems: &problems)
            if !problems.isEmpty {
                // The whole configuration's checks too, on what loaded, so one run names every problem found.
                do {
                    let loaded = try resolve(
                        config, explicitSeqMap: setKeys.contains("seq_map_path") && !config.seqMapPath.isEmpty,
                        overrides: overrides, environment: environment)
                    try loaded.configuration.checkCanStart()
                } catch {
                    // Not a second problem for a key already named (a bad value leaves its default behind).
                    if !problems.contains(where: { $0.description == error.description || ($0.key != nil && $0.key == error.key) }) { problems.append(error) }
                }
                return (nil, problems)
            }
            let loaded = try resolve(
                config, explicitSeqMap: setKeys.contains("seq_map_path") && !config.seqMapPath.isEmpty,
                overrides: overrides, environment: environment)
            try loaded.configuration.checkCanStart()
            return (loaded, [])
        } catch {
            return (nil, [error])
        }
    }

    /// The `[logging] format` the file at `path` sets, when it parses as TOML and names a known format, and
    /// its `node_id` (0 when not a valid one); nil when it does not parse (its error is then plain text) or
    /// sets no format. A problem found in a file that parsed (a bad key, a failed check) is said in this
    /// format, before any logger exists.
    public static func declaredLogging(path: String) -> (format: String, nodeID: UInt64)? {
        guard !path.isEmpty, let text = try? readFile(path), let table = try? TOMLTable(string: text),
            let format = table["logging"]?.table?["format"]?.string, Configuration.Logging.formats.contains(format)
        else { return nil }
        return (format, table["node_id"]?.int.flatMap { UInt64(exactly: $0) } ?? 0)
    }

    /// Parses `text` onto `config`; returns the keys the file set.
    static func apply(toml text: String, file: String, to config: inout Configuration) throws(ConfigurationError) -> Set<String> {
        var problems: [ConfigurationError] = []
        let keys = try apply(toml: text, file: file, to: &config, problems: &problems)
        if let first = problems.first { throw first }
        return keys
    }

    /// Parses `text` onto `config`, collecting every key's problem in `problems` (a file that is not TOML
    /// is thrown).
    static func apply(
        toml text: String, file: String, to config: inout Configuration, problems: inout [ConfigurationError]
    ) throws(ConfigurationError) -> Set<String> {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationError(
                file: file, line: error.source.begin.line, message: "not valid TOML: \(error.description) (column \(error.source.begin.column))")
        } catch {
            throw ConfigurationError(file: file, message: "not valid TOML: \(error)")
        }
        var walker = Walker(schema: .standard, text: text, file: file)
        walker.walk(table, prefix: "", into: &config)
        problems += walker.problems
        return walker.setKeys
    }

    private struct Walker {
        let schema: ConfigurationSchema
        let text: String
        let file: String
        var setKeys: Set<String> = []
        /// Every key's problem, in the file's key order.
        var problems: [ConfigurationError] = []

        mutating func walk(_ table: TOMLTable, prefix: String, into config: inout Configuration) {
            for key in table.keys.sorted() {
                guard let value = table[key] else { continue }
                let written = prefix.isEmpty ? key : prefix + "." + key
                let path = schema.aliases[written] ?? written
                if let field = schema.fields[path] {
                    guard !setKeys.contains(path) else {
                        problems.append(error(at: written, "\(written) and \(path) are the same setting; set only one"))
                        continue
                    }
                    guard field.store(&config, value) else {
                        problems.append(error(at: written, "\(written) must be \(field.expected), found \(describe(value))"))
                        continue
                    }
                    setKeys.insert(path)
                } else if let subtable = value.table, schema.tables.contains(path) {
                    walk(subtable, prefix: path, into: &config)
                } else if schema.tables.contains(path) {
                    problems.append(error(at: written, "\(written) must be a table ([\(written)]), found \(describe(value))"))
                } else {
                    problems.append(error(at: written, unknownKeyMessage(written)))
                }
            }
        }

        func unknownKeyMessage(_ key: String) -> String {
            let parts = key.split(separator: ".")
            if parts.count >= 2, parts[0] == "workers", WorkerRole(rawValue: String(parts[1])) == nil {
                return "unknown worker \"\(parts[1])\" in \(key); the workers are " + WorkerRole.allCases.map(\.rawValue).joined(separator: ", ")
            }
            let candidates = Array(schema.fields.keys) + Array(schema.tables) + Array(schema.aliases.keys)
            if let suggestion = Suggestion.closest(to: key, among: candidates) {
                return "unknown key \(key) (did you mean \(suggestion)?)"
            }
            return "unknown key \(key)"
        }

        func error(at key: String, _ message: String) -> ConfigurationError {
            ConfigurationError(file: file, line: SourceLocator.line(of: key, in: text), key: key, message: message)
        }

        func describe(_ value: TOMLValueConvertible) -> String {
            switch value.type {
            case .string: return "the string \"\(value.string ?? "")\""
            case .int: return "the integer \(value.int ?? 0)"
            case .bool: return "\(value.bool ?? false)"
            case .double: return "the number \(value.double ?? 0)"
            case .array: return "an array"
            case .table: return "a table"
            default: return "a \(value.type)"
            }
        }
    }

    static func resolve(
        _ input: Configuration,
        explicitSeqMap: Bool,
        overrides: CommandLineOverrides,
        environment: Environment
    ) throws(ConfigurationError) -> LoadedConfiguration {
        var config = input
        var warnings: [String] = []
        if let nodeID = overrides.nodeID, nodeID != 0 { config.nodeID = nodeID }
        if config.nodeID == 0 { config.nodeID = environment.defaultNodeID() }
        if let address = overrides.clusterAddress { config.clusterAddress = address }
        if let peers = overrides.clusterPeers { config.clusterPeers = splitList(peers) }
        if let leaves = overrides.leafServers { config.leafServers = splitList(leaves) }

        config.dbPath = FilePaths.absolute(config.dbPath, cwd: environment.currentDirectory)
        if explicitSeqMap {
            config.seqMapPath = FilePaths.absolute(config.seqMapPath, cwd: environment.currentDirectory)
        } else {
            // HarmonyLite's default was $TMPDIR/seq-map.cbor whatever db_path said; ours lives beside the
            // database, where the production guide's recovery procedure deletes it.
            config.seqMapPath = FilePaths.directory(of: config.dbPath) + "/seq-map.cbor"
        }
        if !config.nats.clusterSecretFile.isEmpty {
            config.nats.clusterSecretFile = FilePaths.absolute(config.nats.clusterSecretFile, cwd: environment.currentDirectory)
        }
        if config.snapshot.leaderTTL == 0 { config.snapshot.leaderTTL = 30000 }
        if config.replicationLog.replicas > 5 {
            warnings.append("replication_log.replicas = \(config.replicationLog.replicas) is capped at 5")
        }
        try Validation.check(config)
        return LoadedConfiguration(configuration: config, warnings: warnings)
    }

    static func splitList(_ text: String) -> [String] {
        text.split(separator: ",").map { String($0.trimmingSpaces()) }.filter { !$0.isEmpty }
    }

    private static func readFile(_ path: String) throws(ConfigurationError) -> String {
        guard let file = fopen(path, "r") else {
            throw ConfigurationError(file: path, message: "cannot read the configuration file: \(SystemError.reason(errno))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n > 0 { bytes.append(contentsOf: chunk[0..<n]) }
            if n < chunk.count { break }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigurationError(file: path, message: "the configuration file is not UTF-8 text")
        }
        return text
    }
}

/// Environment lookups the defaults depend on.
public enum ProcessEnvironment {
    public static var temporaryDirectory: String {
        if let value = getenv("TMPDIR"), let string = String(validatingCString: value), !string.isEmpty {
            return string.hasSuffix("/") && string.count > 1 ? String(string.dropLast()) : string
        }
        return "/tmp"
    }
}
