import Foundation
import Logs
import TestSupport
import Testing

@testable import HarmonyConfig
@testable import Logs

@Suite struct ConfigurationTests {
    let directory: TemporaryDirectory
    let database: String
    let environment: ConfigurationLoader.Environment

    init() throws {
        directory = try TemporaryDirectory()
        database = directory.path + "/app.db"
        try makeDatabase(database)
        environment = .init(temporaryDirectory: directory.path, currentDirectory: directory.path, defaultNodeID: { 777 })
    }

    func load(_ toml: String, overrides: CommandLineOverrides = .init()) throws -> LoadedConfiguration {
        let file = directory.write("node.toml", toml)
        return try ConfigurationLoader.load(path: file, overrides: overrides, environment: environment)
    }

    func loadError(_ toml: String) -> ConfigurationError? {
        #expect(throws: ConfigurationError.self) { try load(toml) }
        do {
            _ = try load(toml)
            return nil
        } catch {
            return error as? ConfigurationError
        }
    }

    @Test func plaintextRoutesAreASettingOffByDefault() throws {
        let toml = "db_path = \"\(database)\"\n"
        #expect(try load(toml).configuration.nats.allowPlaintextRoutes == false)
        #expect(try load(toml + "[nats]\nallow_plaintext_routes = true\n").configuration.nats.allowPlaintextRoutes)
    }

    @Test func defaultsMatchHarmonyLiteExceptTheSeqMapLocation() throws {
        let config = try load("db_path = \"\(database)\"").configuration
        #expect(config.nodeID == 777)
        #expect(config.seqMapPath == directory.path + "/seq-map.cbor")
        #expect(config.publish && config.replicate)
        #expect(config.scanMaxChanges == 512)
        #expect(config.cleanupInterval == 5000)
        #expect(config.snapshot.enabled && config.snapshot.store == "nats" && config.snapshot.leaderTTL == 30000)
        #expect(config.replicationLog.shards == 1 && config.replicationLog.maxEntries == 1024 && config.replicationLog.compress)
        #expect(config.nats.subjectPrefix == "harmonylite-change-log" && config.nats.streamPrefix == "harmonylite-changes")
        #expect(config.nats.bindAddress == ":-1" && config.nats.connectRetries == 5 && config.nats.reconnectWaitSeconds == 2)
        #expect(config.prometheus.bind == ":3010" && config.healthCheck.bind == "0.0.0.0:8090" && config.healthCheck.path == "/health")
        #expect(config.embeddedStoreDirectory == directory.path + "/nats/harmonylite-node-777")
        #expect(config.workers.keys.sorted() == WorkerRole.allCases.sorted())
    }

    @Test func everyKeyOfTheSeedsIsAccepted() throws {
        let caFile = directory.write("ca.pem", "x")
        let serverConfig = directory.write("nats.conf", "")
        let config = try load(
            """
            db_path = "\(database)"
            node_id = 1
            seq_map_path = "\(directory.path)/node1-seq-map.cbor"
            publish = false
            replicate = true
            scan_max_changes = 100
            cleanup_interval = 1000
            sleep_timeout = 0
            polling_interval = 50

            [replication_log]
            shards = 2  # comment
            max_entries = 2048
            replicas = 3
            compress = true
            update_existing = true

            [snapshot]
            enabled = true
            store = "s3"
            interval = 3600000
            leader_ttl = 10000
            [snapshot.nats]
            replicas = 3
            bucket = "snaps"
            [snapshot.s3]
            endpoint = "s3.amazonaws.com"
            path = "harmonylite/snapshots"
            bucket = "your-backup-bucket"
            use_ssl = true
            access_key = "your-access-key"
            secret = "your-secret-key"
            session_token = ""
            [snapshot.webdav]
            url = "https://dav/x?dir=/&login=u&secret=p"
            [snapshot.sftp]
            url = "sftp://u:p@host:22/path"

            [nats]
            urls = ["nats://nats-server-1:4222", "nats://nats-server-2:4222"]
            subject_prefix = "cl"
            stream_prefix = "cs"
            server_config = "\(serverConfig)"
            user_name = "harmonylite"
            user_password = "secure-password-here"
            tls_ca_file = "\(caFile)"
            bind_address = "0.0.0.0:4222"
            connect_retries = 10
            reconnect_wait_seconds = 5

            [logging]
            verbose = true
            format = "json"

            [prometheus]
            enable = true
            bind = "0.0.0.0:3010"
            namespace = "harmonylite"
            subsystem = "replication"

            [health_check]
            enable = true
            bind = "127.0.0.1:8090"
            path = "/healthz"
            detailed = false

            [workers.broker]
            memory_limit = "512MiB"
            open_files = 4096
            nice = 5
            restart_backoff_initial = 100
            restart_backoff_max = 2000
            restart_intensity = 3
            restart_period_seconds = 30
            heartbeat_timeout = 2000
            stop_timeout = 3000
            """
        ).configuration
        #expect(config.nodeID == 1 && !config.publish && config.pollingInterval == 50)
        #expect(config.seqMapPath == directory.path + "/node1-seq-map.cbor")
        #expect(config.replicationLog.shards == 2 && config.replicationLog.effectiveReplicas == 3 && config.replicationLog.updateExisting)
        #expect(config.snapshot.store == "s3" && config.snapshot.s3.useSSL && config.snapshot.nats.bucket == "snaps")
        #expect(config.nats.urls.count == 2 && config.nats.caFile == caFile && config.nats.connectRetries == 10)
        #expect(config.logging.format == "json" && config.prometheus.subsystem == "replication" && !config.healthCheck.detailed)
        let broker = try #require(config.workers[.broker])
        #expect(broker.memoryLimit == 512 << 20 && broker.openFiles == 4096 && broker.nice == 5)
        #expect(broker.restartIntensity == 3 && broker.heartbeatTimeout == 2000 && broker.heartbeatInterval == 500)
        #expect(config.workers[.applier] == WorkerSettings())
    }

    @Test func unknownKeyIsNamedWithItsLineAndASuggestion() throws {
        let error = try #require(
            loadError(
                """
                db_path = "\(database)"

                [snapshot]
                enabled = true
                intervall = 5
                """))
        #expect(error.line == 5)
        #expect(error.key == "snapshot.intervall")
        #expect(error.description.contains("node.toml:5: unknown key snapshot.intervall (did you mean snapshot.interval?)"))
    }

    @Test func unknownTableAndUnknownWorkerAreErrors() throws {
        let table = try #require(loadError("db_path = \"\(database)\"\n[sharding]\nignore_tables = []\n"))
        #expect(table.line == 2 && table.description.contains("unknown key sharding"))
        let worker = try #require(loadError("db_path = \"\(database)\"\n[workers.brokr]\nnice = 1\n"))
        #expect(worker.description.contains("unknown worker \"brokr\""))
    }

    @Test func wrongTypeNamesTheKeyAndWhatItMustBe() throws {
        let error = try #require(loadError("db_path = \"\(database)\"\n[replication_log]\nshards = \"4\"\n"))
        #expect(error.line == 3)
        #expect(error.description.contains("replication_log.shards must be an integer from 1 to 1024, found the string \"4\""))
        let bool = try #require(loadError("publish = 1\ndb_path = \"\(database)\""))
        #expect(bool.description.contains("node.toml:1: publish must be true or false, found the integer 1"))
    }

    @Test func impossibleValuesAreRejected() throws {
        #expect(loadError("db_path = \"\(database)\"\n[replication_log]\nshards = 0\n")?.key == "replication_log.shards")
        #expect(
            loadError("db_path = \"\(database)\"\n[snapshot]\nstore = \"ftp\"\n")?.description.contains("one of \"nats\", \"s3\", \"webdav\", \"sftp\"") == true
        )
        #expect(loadError("db_path = \"\(database)\"\n[logging]\nformat = \"xml\"\n")?.key == "logging.format")
        #expect(loadError("db_path = \"\(database)\"\n[nats]\nbind_address = \"4222\"\n")?.key == "nats.bind_address")
        #expect(loadError("db_path = \"\(database)\"\n[workers.capturer]\nnice = 40\n")?.key == "workers.capturer.nice")
        #expect(loadError("db_path = \"\(database)\"\n[workers.capturer]\nmemory_limit = \"lots\"\n")?.key == "workers.capturer.memory_limit")
        #expect(
            loadError("db_path = \"\(database)\"\n[workers.capturer]\nrestart_backoff_initial = 5000\nrestart_backoff_max = 100\n")?.key
                == "workers.capturer.restart_backoff_initial")
        #expect(loadError("db_path = \"\(database)\"\n[nats]\ncert_file = \"\(database)\"\n")?.description.contains("set both or neither") == true)
        #expect(
            loadError("db_path = \"\(database)\"\n[nats]\nseed_file = \"/nonexistent/seed\"\n")?.description.contains("/nonexistent/seed does not exist")
                == true)
        #expect(loadError("db_path = \"\(database)\"\n[snapshot]\nstore = \"s3\"\n")?.key == "snapshot.s3.endpoint")
    }

    @Test func maxClockOffsetDefaultsTo500MillisecondsAndRefusesTyposAndImpossibleValues() throws {
        #expect(try load("db_path = \"\(database)\"").configuration.maxClockOffset == 500)
        #expect(try load("db_path = \"\(database)\"\nmax_clock_offset = 2000\n").configuration.maxClockOffset == 2000)
        for value in ["0", "-500", "3600001", "\"500ms\"", "0.5"] {
            let error = try #require(loadError("db_path = \"\(database)\"\nmax_clock_offset = \(value)\n"), "\(value)")
            #expect(error.key == "max_clock_offset" && error.line == 2, "\(value)")
            #expect(error.description.contains("max_clock_offset must be an integer from 1 to 3600000"), "\(error.description)")
        }
        let typo = try #require(loadError("db_path = \"\(database)\"\nmax_clock_ofset = 500\n"))
        #expect(typo.description.contains("unknown key max_clock_ofset (did you mean max_clock_offset?)"), "\(typo.description)")
    }

    @Test func aliasAndCanonicalSpellingTogetherAreAnError() throws {
        let ca = directory.write("ca.pem", "x")
        let error = try #require(loadError("db_path = \"\(database)\"\n[nats]\nca_file = \"\(ca)\"\ntls_ca_file = \"\(ca)\"\n"))
        #expect(error.description.contains("same setting"))
    }

    @Test func aMissingDatabaseIsCreatedAtStartButItsDirectoryMustExist() throws {
        #expect(try load("db_path = \"\(directory.path)/missing.db\"").configuration.dbPath.hasSuffix("/missing.db"), "created and restored at start")
        let error = try #require(loadError("db_path = \"\(directory.path)/nodir/missing.db\""))
        #expect(error.key == "db_path")
        #expect(error.description.contains("missing.db does not exist, nor does its directory"))
    }

    @Test func invalidTOMLReportsItsLine() throws {
        let error = try #require(loadError("db_path = \"\(database)\"\n\n[nats\nurls = []\n"))
        #expect(error.line == 3)
        #expect(error.description.contains("not valid TOML"))
    }

    @Test func missingConfigurationFileIsAnErrorNotSilentDefaults() {
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(path: directory.path + "/nope.toml", environment: environment)
        }
    }

    @Test func commandLineNodeIDWinsWithAndWithoutAFile() throws {
        let fromFile = try load("db_path = \"\(database)\"\nnode_id = 5", overrides: .init(nodeID: 9)).configuration
        #expect(fromFile.nodeID == 9)
        // HarmonyLite ignored -node-id without a config file.
        let environment = ConfigurationLoader.Environment(temporaryDirectory: directory.path, currentDirectory: directory.path, defaultNodeID: { 1 })
        _ = directory.write("harmonylite.db", "")
        try makeDatabase(directory.path + "/harmonylite.db")
        let noFile = try ConfigurationLoader.load(
            path: nil, overrides: .init(nodeID: 9, clusterPeers: "nats://127.0.0.1:1/, nats://localhost:2/,"), environment: environment)
        #expect(noFile.configuration.nodeID == 9)
        #expect(noFile.configuration.clusterPeers == ["nats://127.0.0.1:1/", "nats://localhost:2/"])
    }

    @Test func relativePathsResolveAgainstTheWorkingDirectory() throws {
        let config = try load("db_path = \"app.db\"\nseq_map_path = \"sm.cbor\"").configuration
        #expect(config.dbPath == database)
        #expect(config.seqMapPath == directory.path + "/sm.cbor")
    }

    @Test func workersReceiveTheSameConfigurationAndLogsNeverSeeSecrets() throws {
        let config = try load(
            """
            db_path = "\(database)"
            [nats]
            user_name = "u"
            user_password = "hunter2"
            urls = ["nats://u:hunter2@host:4222"]
            """
        ).configuration
        #expect(try Configuration(fromWorkerHandshake: config.encodedForWorkers()) == config)
        let logged = "\(config.redacted)"
        #expect(!logged.contains("hunter2"))
        #expect(logged.contains("nats://u:<redacted>@host:4222"))
    }
}

/// Credentials in any text: every occurrence, URLs and parameters and JSON, and registered values anywhere.
@Suite struct SecretRedactionTests {
    @Test(arguments: [
        ("https://dav/x?dir=/a&login=u&secret=s3cr3t&x=1 and again ?secret=s3cr3t", "s3cr3t"),
        ("webdav PUT failed: https://dav/x?SECRET=abcd;password=abcd tok", "abcd"),
        ("nats://u:pw1234@h:4222, nats://v:pw1234@g:4222", "pw1234"),
        (#"{"user_password":"p@ss \"quoted\" w0rd","token": "p@ss"}"#, "p@ss"),
        ("sftp://user:hunter2@host:22/dir?key=/etc/k", "hunter2"),
        ("s3 x-amz-security-token=FwoGZX&session_token=FwoGZX", "FwoGZX"),
    ])
    func everyOccurrenceIsMasked(text: String, secret: String) {
        let redacted = SecretRedaction.redact(text)
        #expect(!redacted.contains(secret), "\(redacted)")
        #expect(redacted.contains(SecretRedaction.mask))
    }

    @Test func registeredValuesAreMaskedWherever() {
        SecretRedaction.register(["correct horse battery"])
        #expect(SecretRedaction.redact("auth failed for correct horse battery!") == "auth failed for <redacted>!")
        #expect(SecretRedaction.redact("dir=/a login=u") == "dir=/a login=u", "harmless parameters stay")
        #expect(URLRedaction.redact("https://h/p?dir=x&login=u&secret=a&secret=b") == "https://h/p?dir=x&login=u&secret=<redacted>&secret=<redacted>")
    }

    /// Compared as bytes: as Characters, a secret followed by a combining mark is another character and
    /// was not found (`String.replacing`).
    @Test func aRegisteredValueBeforeACombiningMarkIsMasked() {
        SecretRedaction.register(["tr0ub4dor"])
        let redacted = SecretRedaction.redact("name tr0ub4dor\u{301} and tr0ub4dor")
        #expect(Array(redacted.utf8) == Array("name <redacted>\u{301} and <redacted>".utf8), "\(redacted)")
    }

    /// A field longer than a log line keeps is cut twice (roughly before masking, exactly after). Masks
    /// shorter than the secrets they replace pull the rough cut's tail within the exact one: what is left
    /// there of a secret cut through must not come out.
    @Test func aSecretCutThroughIsNotLeftInALongField() {
        let secret = "0123456789-a-long-registered-secret-value-0123456789"
        SecretRedaction.register([secret])
        let limit = LineLogHandler.maximumFieldBytes
        // Many secrets first (each masked to 10 bytes), then one that the rough cut at limit + 1024 splits.
        var text = String(repeating: secret + " ", count: 150)
        text += String(repeating: "x", count: limit + 1024 - text.utf8.count - 20) + secret + String(repeating: "y", count: 4000)
        let cleaned = LineLogHandler.clean(text)
        #expect(cleaned.utf8.count <= limit + 64)
        #expect(cleaned.hasSuffix("more bytes cut)"))
        #expect(!cleaned.contains("0123456789-a-long"), "the cut secret's first 20 bytes came out")
        #expect(cleaned.contains(String(repeating: "x", count: 100)), "the text around it is kept")
    }
}

/// Each worker's welcome carries only the secrets it needs.
@Suite struct WorkerSecretsTests {
    static func config() -> Configuration {
        var config = Configuration(dbPath: "/d/x.db", nodeID: 1)
        config.nats.userName = "u"
        config.nats.userPassword = "nats-pw-1"
        config.nats.seedFile = "/etc/harmonylite/node.nk"
        config.nats.urls = ["nats://u:url-pw-1@h:4222"]
        config.natsClientURLs = config.nats.urls
        config.snapshot.s3.secret = "s3-secret-1"
        config.snapshot.s3.sessionToken = "s3-token-1"
        config.snapshot.webdav.url = "https://dav/x?login=u&secret=dav-secret-1"
        config.snapshot.sftp.url = "sftp://u:sftp-pw-1@h/dir"
        return config
    }

    static let natsSecrets = ["nats-pw-1", "url-pw-1", "/etc/harmonylite/node.nk"]
    static let storeSecrets = ["s3-secret-1", "s3-token-1", "dav-secret-1", "sftp-pw-1"]

    @Test(arguments: [
        (WorkerRole.applier, [String](), natsSecrets + storeSecrets), (.capturer, [], natsSecrets + storeSecrets),
        (.broker, natsSecrets, storeSecrets), (.snapshotter, natsSecrets + storeSecrets, []),
    ])
    func eachWorkerGetsOnlyWhatItNeeds(worker: WorkerRole, kept: [String], removed: [String]) {
        let welcome = String(decoding: Self.config().forWorker(worker).encodedForWorkers(), as: UTF8.self).replacingOccurrences(of: "\\/", with: "/")
        for secret in kept { #expect(welcome.contains(secret), "\(worker) needs \(secret)") }
        for secret in removed { #expect(!welcome.contains(secret), "\(worker) got \(secret)") }
    }

    @Test func everySecretValueIsListedForRedaction() {
        let values = Set(Self.config().secretValues)
        for secret in ["nats-pw-1", "url-pw-1"] + Self.storeSecrets { #expect(values.contains(secret), "\(secret)") }
    }
}
