import TOMLKit

/// Every TOML key we accept, with its type, its allowed range and where it lands in `Configuration`.
/// Declared once; the loader walks the file against it, so an unknown key or a wrong type cannot pass.
struct ConfigurationSchema {
    struct Field {
        /// What the value must be, for error messages ("an integer from 1 to 5").
        let expected: String
        /// Stores the value; nil when it does not fit, so the loader reports `expected`.
        let store: (inout Configuration, TOMLValueConvertible) -> Bool
    }

    let fields: [String: Field]
    /// Aliases: the NATS guide documents `tls_ca_file` etc., HarmonyLite's code reads `ca_file`.
    let aliases: [String: String] = [
        "nats.tls_ca_file": "nats.ca_file",
        "nats.tls_cert_file": "nats.cert_file",
        "nats.tls_key_file": "nats.key_file",
    ]

    /// Table names that hold fields, so `[snapshot.s3]` is known even when it is empty.
    var tables: Set<String> {
        var result: Set<String> = []
        for key in fields.keys {
            var parts = key.split(separator: ".").dropLast()
            while !parts.isEmpty {
                result.insert(parts.joined(separator: "."))
                parts = parts.dropLast()
            }
        }
        return result
    }

    static var standard: ConfigurationSchema { ConfigurationSchema() }

    private init() {
        typealias C = Configuration
        var f: [String: Field] = [
            "db_path": .string(\C.dbPath),
            "node_id": .integer(\C.nodeID, 0...UInt64(Int64.max)),
            "seq_map_path": .string(\C.seqMapPath),
            "publish": .bool(\C.publish),
            "replicate": .bool(\C.replicate),
            "scan_max_changes": .integer(\C.scanMaxChanges, 1...UInt32.max),
            "cleanup_interval": .integer(\C.cleanupInterval),
            "sleep_timeout": .integer(\C.sleepTimeout),
            "polling_interval": .integer(\C.pollingInterval),
            "max_clock_offset": .integer(\C.maxClockOffset, 1...3_600_000),

            "snapshot.enabled": .bool(\C.snapshot.enabled),
            "snapshot.accept_unsigned": .bool(\C.snapshot.acceptUnsigned),
            "snapshot.interval": .integer(\C.snapshot.interval),
            "snapshot.leader_ttl": .integer(\C.snapshot.leaderTTL),
            "snapshot.store": .choice(\C.snapshot.store, C.Snapshot.stores),
            "snapshot.nats.replicas": .integer(\C.snapshot.nats.replicas, 1...5),
            "snapshot.nats.bucket": .string(\C.snapshot.nats.bucket),
            "snapshot.s3.path": .string(\C.snapshot.s3.path),
            "snapshot.s3.endpoint": .string(\C.snapshot.s3.endpoint),
            "snapshot.s3.access_key": .string(\C.snapshot.s3.accessKey),
            "snapshot.s3.secret": .string(\C.snapshot.s3.secret),
            "snapshot.s3.session_token": .string(\C.snapshot.s3.sessionToken),
            "snapshot.s3.bucket": .string(\C.snapshot.s3.bucket),
            "snapshot.s3.use_ssl": .bool(\C.snapshot.s3.useSSL),
            "snapshot.webdav.url": .string(\C.snapshot.webdav.url),
            "snapshot.sftp.url": .string(\C.snapshot.sftp.url),

            "replication_log.shards": .integer(\C.replicationLog.shards, 1...1024),
            "replication_log.max_entries": .integer(\C.replicationLog.maxEntries, 1...Int64.max),
            "replication_log.replicas": .integer(\C.replicationLog.replicas, Int(Int32.min)...Int(Int32.max)),
            "replication_log.compress": .bool(\C.replicationLog.compress),
            "replication_log.update_existing": .bool(\C.replicationLog.updateExisting),
            "replication_log.upstream_stream_names": .bool(\C.replicationLog.upstreamStreamNames),
            "replication_log.publish_for_upstream": .bool(\C.replicationLog.publishForUpstream),

            "nats.urls": .strings(\C.nats.urls),
            "nats.subject_prefix": .string(\C.nats.subjectPrefix),
            "nats.stream_prefix": .string(\C.nats.streamPrefix),
            "nats.server_config": .string(\C.nats.serverConfig),
            "nats.seed_file": .string(\C.nats.seedFile),
            "nats.user_name": .string(\C.nats.userName),
            "nats.user_password": .string(\C.nats.userPassword),
            "nats.ca_file": .string(\C.nats.caFile),
            "nats.cert_file": .string(\C.nats.certFile),
            "nats.key_file": .string(\C.nats.keyFile),
            "nats.bind_address": .string(\C.nats.bindAddress),
            "nats.connect_retries": .integer(\C.nats.connectRetries, 0...1_000_000),
            "nats.reconnect_wait_seconds": .integer(\C.nats.reconnectWaitSeconds, 0...3600),
            "nats.cluster_secret_file": .string(\C.nats.clusterSecretFile),
            "nats.max_file_store": .byteSize({ $0.nats.maxFileStore = $1 }),
            "nats.route_tls_cert_file": .string(\C.nats.routeTLSCertFile),
            "nats.route_tls_key_file": .string(\C.nats.routeTLSKeyFile),
            "nats.route_tls_ca_file": .string(\C.nats.routeTLSCAFile),
            "nats.allow_plaintext_routes": .bool(\C.nats.allowPlaintextRoutes),
            "nats.leaf_listen": .string(\C.nats.leafListen),
            "nats.region": .string(\C.nats.region),
            "nats.regions": .strings(\C.nats.regions),

            "logging.verbose": .bool(\C.logging.verbose),
            "logging.format": .choice(\C.logging.format, C.Logging.formats),

            "prometheus.enable": .bool(\C.prometheus.enable),
            "prometheus.bind": .string(\C.prometheus.bind),
            "prometheus.namespace": .string(\C.prometheus.namespace),
            "prometheus.subsystem": .string(\C.prometheus.subsystem),

            "health_check.enable": .bool(\C.healthCheck.enable),
            "health_check.bind": .string(\C.healthCheck.bind),
            "health_check.path": .string(\C.healthCheck.path),
            "health_check.detailed": .bool(\C.healthCheck.detailed),
        ]
        for name in WorkerSettings.names {
            func key(_ k: String) -> String { "workers.\(name).\(k)" }
            func set<T>(_ path: WritableKeyPath<WorkerSettings, T>) -> (inout Configuration, T) -> Void {
                { config, value in config.workers[name, default: WorkerSettings()][keyPath: path] = value }
            }
            f[key("memory_limit")] = .byteSize(set(\.memoryLimit))
            f[key("open_files")] = .integer(set(\.openFiles), 0...1 << 20)
            f[key("nice")] = .integer(set(\.nice), -20...19)
            f[key("restart_backoff_initial")] = .integer(set(\.restartBackoffInitial), 1...3_600_000)
            f[key("restart_backoff_max")] = .integer(set(\.restartBackoffMax), 1...3_600_000)
            f[key("restart_intensity")] = .integer(set(\.restartIntensity), 1...1000)
            f[key("restart_period_seconds")] = .integer(set(\.restartPeriodSeconds), 1...86400)
            f[key("heartbeat_timeout")] = .integer(set(\.heartbeatTimeout), 100...600_000)
            f[key("stop_timeout")] = .integer(set(\.stopTimeout), 100...600_000)
        }
        fields = f
    }
}

extension ConfigurationSchema.Field {
    typealias Setter<T> = (inout Configuration, T) -> Void

    static func string(_ path: WritableKeyPath<Configuration, String>) -> Self {
        Self(expected: "a string") { config, value in
            guard let string = value.string else { return false }
            config[keyPath: path] = string
            return true
        }
    }

    static func choice(_ path: WritableKeyPath<Configuration, String>, _ choices: [String]) -> Self {
        Self(expected: "one of " + choices.map { "\"\($0)\"" }.joined(separator: ", ")) { config, value in
            guard let string = value.string, choices.contains(string) else { return false }
            config[keyPath: path] = string
            return true
        }
    }

    static func bool(_ path: WritableKeyPath<Configuration, Bool>) -> Self {
        Self(expected: "true or false") { config, value in
            guard let bool = value.bool else { return false }
            config[keyPath: path] = bool
            return true
        }
    }

    static func integer<T: FixedWidthInteger>(
        _ path: WritableKeyPath<Configuration, T>,
        _ range: ClosedRange<T> = T.min...T.max
    ) -> Self {
        integer({ $0[keyPath: path] = $1 }, range)
    }

    static func integer<T: FixedWidthInteger>(_ set: @escaping Setter<T>, _ range: ClosedRange<T>) -> Self {
        Self(expected: "an integer from \(range.lowerBound) to \(range.upperBound)") { config, value in
            guard let int = value.int, let typed = T(exactly: int), range.contains(typed) else { return false }
            set(&config, typed)
            return true
        }
    }

    static func integer(_ set: @escaping Setter<Int?>, _ range: ClosedRange<Int>) -> Self {
        integer({ (config: inout Configuration, value: Int) in set(&config, value) }, range)
    }

    static func strings(_ path: WritableKeyPath<Configuration, [String]>) -> Self {
        Self(expected: "an array of strings") { config, value in
            guard let array = value.array else { return false }
            var strings: [String] = []
            for element in array {
                guard let string = element.string else { return false }
                strings.append(string)
            }
            config[keyPath: path] = strings
            return true
        }
    }

    static func byteSize(_ set: @escaping Setter<UInt64>) -> Self {
        Self(expected: "a size: bytes as an integer, or a string such as \"512MiB\" or \"2G\"") { config, value in
            if let int = value.int, int >= 0 {
                set(&config, UInt64(int))
                return true
            }
            guard let string = value.string, let bytes = ByteSize.parse(string) else { return false }
            set(&config, bytes)
            return true
        }
    }
}
