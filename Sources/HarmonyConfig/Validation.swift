#if canImport(Glibc)
import SystemCalls
import Glibc
#endif

/// Checks that need the whole configuration or the file system: values that parse but cannot work.
enum Validation {
    static func check(_ config: Configuration) throws(ConfigurationError) {
        // A missing database is created at start and restored from the cluster's newest snapshot (the
        // production guide's recovery: delete the database and the seq map, start); its directory must exist.
        let databaseDirectory = FilePaths.directory(of: config.dbPath)
        if access(config.dbPath, F_OK) != 0 && errno == ENOENT {
            guard isDirectory(databaseDirectory) else {
                throw ConfigurationError(key: "db_path", message: "Database file \(config.dbPath) does not exist, nor does its directory \(databaseDirectory)")
            }
        } else {
            try requireRegularFile(config.dbPath, key: "db_path", what: "Database file") { "" }
        }
        let seqMapDirectory = FilePaths.directory(of: config.seqMapPath)
        guard isDirectory(seqMapDirectory) else {
            throw ConfigurationError(key: "seq_map_path", message: "seq_map_path \(config.seqMapPath): directory \(seqMapDirectory) does not exist")
        }

        let nats = config.nats
        for (key, path) in [
            ("nats.server_config", nats.serverConfig), ("nats.seed_file", nats.seedFile), ("nats.ca_file", nats.caFile),
            ("nats.cert_file", nats.certFile), ("nats.key_file", nats.keyFile), ("nats.route_tls_cert_file", nats.routeTLSCertFile),
            ("nats.route_tls_key_file", nats.routeTLSKeyFile), ("nats.route_tls_ca_file", nats.routeTLSCAFile),
        ] where !path.isEmpty {
            try requireRegularFile(path, key: key, what: key) { "" }
        }
        if Set([nats.routeTLSCertFile.isEmpty, nats.routeTLSKeyFile.isEmpty, nats.routeTLSCAFile.isEmpty]).count > 1 {
            throw ConfigurationError(
                key: "nats.route_tls_cert_file",
                message: "nats.route_tls_cert_file, route_tls_key_file and route_tls_ca_file go together: set all three or none")
        }
        if nats.certFile.isEmpty != nats.keyFile.isEmpty {
            throw ConfigurationError(key: "nats.cert_file", message: "nats.cert_file and nats.key_file go together: set both or neither")
        }
        if !nats.userPassword.isEmpty && nats.userName.isEmpty {
            throw ConfigurationError(key: "nats.user_name", message: "nats.user_password is set but nats.user_name is empty")
        }
        for url in nats.urls where url.trimmingCharacters(in: " ").isEmpty {
            throw ConfigurationError(key: "nats.urls", message: "nats.urls contains an empty URL")
        }
        for (key, value) in [
            ("nats.bind_address", nats.bindAddress), ("prometheus.bind", config.prometheus.bind), ("health_check.bind", config.healthCheck.bind),
        ] {
            guard HostPort(parsing: value) != nil else {
                throw ConfigurationError(key: key, message: "\(key) = \"\(value)\" is not host:port (port 0-65535, or -1 for any free port)")
            }
        }
        if !nats.leafListen.isEmpty && HostPort(parsing: nats.leafListen) == nil {
            throw ConfigurationError(key: "nats.leaf_listen", message: "nats.leaf_listen = \"\(nats.leafListen)\" is not host:port")
        }
        try validateRegions(nats)
        if !config.clusterAddress.isEmpty && HostPort(parsing: config.clusterAddress) == nil {
            throw ConfigurationError(key: "-cluster-addr", message: "-cluster-addr \"\(config.clusterAddress)\" is not host:port")
        }
        if !config.healthCheck.path.hasPrefix("/") {
            throw ConfigurationError(key: "health_check.path", message: "health_check.path must start with /")
        }
        for prefix in [("nats.subject_prefix", nats.subjectPrefix), ("nats.stream_prefix", nats.streamPrefix)] {
            guard !prefix.1.isEmpty, prefix.1.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                throw ConfigurationError(key: prefix.0, message: "\(prefix.0) = \"\(prefix.1)\" may hold only letters, digits, - and _")
            }
        }
        try checkSnapshotStore(config.snapshot)
        for name in WorkerRole.allCases {
            let worker = config.settings(for: name)
            if worker.restartBackoffInitial > worker.restartBackoffMax {
                throw ConfigurationError(
                    key: "workers.\(name).restart_backoff_initial",
                    message:
                        "workers.\(name).restart_backoff_initial (\(worker.restartBackoffInitial) ms) is above restart_backoff_max (\(worker.restartBackoffMax) ms)"
                )
            }
            if worker.memoryLimit != 0 && worker.memoryLimit < 16 << 20 {
                throw ConfigurationError(
                    key: "workers.\(name).memory_limit",
                    message: "workers.\(name).memory_limit = \(ByteSize.format(worker.memoryLimit)) is below 16 MiB, too little to start a process"
                )
            }
        }
    }

    /// Settings that can never work, refused with the reason instead of waiting forever at start: more
    /// JetStream replicas than the embedded cluster has servers (itself and its `-cluster-peers`). Not
    /// checked when `server_config` may add routes, nor with external NATS (its size is not known here).
    /// Checks of settings only a starting node needs (the one-shot commands, `-status` among them, run with
    /// the same file and without `-cluster-peers`).
    static func checkStart(_ config: Configuration) throws(ConfigurationError) {
        try checkReplicas(config)
        try checkRoutes(config)
    }

    /// `-cluster-addr` with no `-cluster-peers`: nats-server (upstream HarmonyLite's embedded one too) refuses a
    /// JetStream cluster without routes (`JetStream cluster requires configured routes …`), so the embedded
    /// server could never start. Not checked when `server_config` may add routes.
    static func checkRoutes(_ config: Configuration) throws(ConfigurationError) {
        guard config.nats.isEmbedded, config.nats.serverConfig.isEmpty, !config.clusterAddress.isEmpty, config.clusterPeers.isEmpty else { return }
        throw ConfigurationError(
            key: "-cluster-peers",
            message: "-cluster-addr \(config.clusterAddress) is set but -cluster-peers is empty: nats-server refuses a JetStream cluster "
                + "without routes. Name the other servers with -cluster-peers, or leave -cluster-addr out for a single node")
    }

    static func checkReplicas(_ config: Configuration) throws(ConfigurationError) {
        guard config.nats.isEmbedded, config.nats.serverConfig.isEmpty else { return }
        let servers = 1 + config.clusterPeers.count
        for (key, wanted) in [
            ("replication_log.replicas", config.replicationLog.effectiveReplicas),
            ("snapshot.nats.replicas", config.snapshot.enabled && config.snapshot.store == "nats" ? config.snapshot.nats.replicas : 1),
        ]
        where wanted > servers {
            throw ConfigurationError(
                key: key,
                message: "\(key) asks for \(wanted) JetStream replicas, but the embedded cluster has \(servers) "
                    + "server(s) (this node and \(config.clusterPeers.count) -cluster-peers): JetStream could never place them. Lower it to at most "
                    + "\(servers), or name the other servers with -cluster-peers")
        }
    }

    private static func checkSnapshotStore(_ snapshot: Configuration.Snapshot) throws(ConfigurationError) {
        guard snapshot.enabled else { return }
        switch snapshot.store {
        case "s3":
            for (key, value) in [("snapshot.s3.endpoint", snapshot.s3.endpoint), ("snapshot.s3.bucket", snapshot.s3.bucket)] where value.isEmpty {
                throw ConfigurationError(key: key, message: "snapshot.store is \"s3\" but \(key) is empty")
            }
        case "webdav" where snapshot.webdav.url.isEmpty:
            throw ConfigurationError(key: "snapshot.webdav.url", message: "snapshot.store is \"webdav\" but snapshot.webdav.url is empty")
        case "sftp" where snapshot.sftp.url.isEmpty:
            throw ConfigurationError(key: "snapshot.sftp.url", message: "snapshot.store is \"sftp\" but snapshot.sftp.url is empty")
        default: break
        }
    }

    private static func requireRegularFile(_ path: String, key: String, what: String, hint: () -> String) throws(ConfigurationError) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let reason = errno == ENOENT ? "does not exist" : SystemError.reason(errno)
            let extra = hint()
            throw ConfigurationError(key: key, message: "\(what) \(path) \(reason)" + (extra.isEmpty ? "" : ". " + extra))
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw ConfigurationError(key: key, message: "\(what) \(path) is not a regular file")
        }
    }

    /// A region names a JetStream domain and a stream: letters, digits, `_` and `-`, at most 32.
    static func validateRegions(_ nats: Configuration.NATS) throws(ConfigurationError) {
        for (key, name) in [("nats.region", nats.region)] + nats.regions.map({ ("nats.regions", $0) }) where key == "nats.regions" || !name.isEmpty {
            guard Configuration.isRegionName(name) else {
                throw ConfigurationError(key: key, message: "\(key): \"\(name)\" is not a region name (1 to 32 letters, digits, _ or -)")
            }
        }
        if nats.region.isEmpty && !nats.regions.isEmpty {
            throw ConfigurationError(key: "nats.regions", message: "nats.regions is set but nats.region (this node's region) is empty")
        }
        if !nats.region.isEmpty && !nats.isEmbedded {
            throw ConfigurationError(
                key: "nats.region", message: "nats.region configures the embedded nats-server; with nats.urls set, configure domains on your own servers")
        }
    }

    private static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }
}

extension String {
    func trimmingCharacters(in set: String) -> Substring {
        var s = self[...]
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return s
    }

}
