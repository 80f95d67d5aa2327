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
        return registryProblem(.localSchemaUnreadable(error: error))
    }

    public mutating func schemaRegistryWritten(_ schema: LocalSchema, previousHash: String?, now: Double) -> [Action] {
        guard registryActive else { return [] }
        let first = registry.written == nil
        let hashChanged = registry.written.map { $0.hash != schema.hash } ?? false
        registry.written = schema
        registry.previousHash = previousHash
        registry.nextRefresh = now + RegistrySchedule.refreshInterval
        registry.lastProblem = nil
        if first { return [.report(.schemaRegistered(hash: schema.hash, tables: schema.tables.count))] }
        if hashChanged { return [.report(.schemaChanged(hash: schema.hash, tables: schema.tables.count))] }
        return []
    }

    public mutating func schemaRegistryWriteFailed(_ error: String, now: Double) -> [Action] {
        guard registryActive else { return [] }
        registry.nextSchemaRead = max(registry.nextSchemaRead, now + RegistrySchedule.retryAfterFailedWrite)
        return registryProblem(.registryNotWritten(error: error, retryIn: RegistrySchedule.retryAfterFailedWrite))
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
    mutating func registryProblem(_ report: PlannerReport) -> [Action] {
        guard report != registry.lastProblem else { return [] }
        registry.lastProblem = report
        return [.report(report)]
    }
}
