/// Events of the schema registry: the local schema read, the node's entry written or not.
extension SnapshotPlanner {
    public mutating func localSchemaRead(_ schema: LocalSchema, now: Double) -> [Action] {
        guard registryActive else { return [] }
        let changed = schema != registry.written
        let due = registry.nextRefresh.map { now >= $0 } ?? true
        guard changed || due else { return [] }
        let previous = registry.written.flatMap { $0.hash != schema.hash ? $0.hash : nil } ?? registry.previousHash
        return [.writeSchemaRegistry(schema, previousHash: previous)]
    }

    public mutating func localSchemaUnreadable(_ error: String, now: Double) -> [Action] {
        guard registryActive else { return [] }
        return registryProblem("cannot read the local schema for the schema registry: \(error)")
    }

    public mutating func schemaRegistryWritten(_ schema: LocalSchema, previousHash: String?, now: Double) -> [Action] {
        guard registryActive else { return [] }
        let first = registry.written == nil
        let hashChanged = registry.written.map { $0.hash != schema.hash } ?? false
        registry.written = schema
        registry.previousHash = previousHash
        registry.nextRefresh = now + RegistrySchedule.refreshInterval
        registry.lastProblem = ""
        if first { return [.log(.info, "schema registry: registered schema \(schema.hash.prefix(16)) (\(schema.tables.count) tables)")] }
        if hashChanged { return [.log(.info, "schema registry: the schema changed to \(schema.hash.prefix(16)) (\(schema.tables.count) tables)")] }
        return []
    }

    public mutating func schemaRegistryWriteFailed(_ error: String, now: Double) -> [Action] {
        guard registryActive else { return [] }
        registry.nextSchemaRead = max(registry.nextSchemaRead, now + RegistrySchedule.retryAfterFailedWrite)
        return registryProblem("cannot write this node's entry to the schema registry: \(error); trying again in \(Int(RegistrySchedule.retryAfterFailedWrite)) s")
    }

    // MARK: steps

    /// Ready (restored if needed) and connected: the database is the node's own and NATS is there.
    var registryActive: Bool { registry.connected && isReady }

    /// The registry's timed work: connecting when snapshots are disabled, then reading the local schema.
    mutating func registryWork(now: Double) -> [Action] {
        if phase == .disabled && !registry.connected {
            guard now >= registry.nextConnect else { return [] }
            registry.nextConnect = now + RegistrySchedule.connectRetryInterval
            return [.connect]
        }
        guard registryActive, now >= registry.nextSchemaRead else { return [] }
        registry.nextSchemaRead = now + RegistrySchedule.schemaReadInterval
        return [.readLocalSchema]
    }

    var registryDeadline: Double? {
        if phase == .disabled && !registry.connected { return registry.nextConnect }
        return registryActive ? registry.nextSchemaRead : nil
    }

    /// Logged once until it changes; the registry's problems are not the snapshotter's status.
    mutating func registryProblem(_ text: String) -> [Action] {
        guard text != registry.lastProblem else { return [] }
        registry.lastProblem = text
        return [.log(.warning, text)]
    }
}
