import TestSupport

/// The workload's schema changes and its long-held lock (issue 20): the features `rollingRenames`,
/// `dropAndAdd`, `recreateTable`, `oneNodeTable` and `longLock`. They split the run into phases; between two
/// phases (every node's writes of the first are done) one step runs on one node, and the nodes' writes go on
/// under the names each node has at that moment.
extension Workload {
    /// One step between two phases.
    enum Step {
        /// `CREATE TABLE notes_local` on this node.
        case createLocal(Int)
        /// `ALTER TABLE customer RENAME TO customers`.
        case renameTable(Int)
        /// A write to kv and `ALTER TABLE kv RENAME COLUMN k TO key`, in one script.
        case renameKey(Int)
        /// The node stopped, `DROP COLUMN secret; ADD COLUMN color TEXT`, started.
        case dropAndAdd(Int)
        /// `DROP TABLE events; CREATE TABLE events (…)`; the first waits for events to converge (its writes
        /// stopped before), the last writes rows under old keys in the same script (writes resume after).
        case recreateEvents(Int, first: Bool, last: Bool)
        /// The application holds the write lock through the next phase.
        case holdLock(Int)
    }

    /// Where each node stands, and what the feature tables must hold in the end.
    struct SchemaState {
        var renamedTable: Set<Int> = []
        var renamedKey: Set<Int> = []
        var profilesMigrated: Set<Int> = []
        /// No writes to events: from the wait for its convergence to the last node's recreation.
        var eventsFrozen = false
        var eventsRecreated = false
        /// Keys of events upserted since every node recreated it (the old keys keep their row clocks).
        var eventsKeysAfter: Set<Int> = []
        var localOwner: Int?
        /// The nodes that have `notes_local` (its owner from the start, one more later).
        var localNodes: Set<Int> = []
        /// (logical table, key literal) → what `quote()` of its columns prints, joined by `|`; nil: deleted.
        var owned: [String: [String: String?]] = [:]
        /// The node whose application held the lock, if any.
        var held: Int?
    }

    static let localTable = "notes_local"

    /// `dropAndAdd` in either form.
    var dropsAndAdds: Bool { !features.isDisjoint(with: [.dropAndAdd, .dropAndAddAmbiguous]) }

    /// The plan: the steps before each phase (the first before phase 0), in a seeded order that interleaves
    /// the features, each feature's own steps in order.
    mutating func planSteps(nodes: Int) -> [[Step]] {
        var first: [Step] = []
        var sequences: [[Step]] = []
        var laterLocal: Step?
        if features.contains(.oneNodeTable) {
            let owner = Int.random(in: 0..<nodes, using: &rng)
            schemaState.localOwner = owner
            first.append(.createLocal(owner))
            laterLocal = .createLocal((owner + Int.random(in: 1..<nodes, using: &rng)) % nodes)
        }
        if features.contains(.rollingRenames) {
            sequences.append(((0..<nodes).map { Step.renameTable($0) } + (0..<nodes).map { Step.renameKey($0) }).shuffled(using: &rng))
        }
        if dropsAndAdds { sequences.append((0..<nodes).shuffled(using: &rng).map { Step.dropAndAdd($0) }) }
        if features.contains(.recreateTable) {
            let order = (0..<nodes).shuffled(using: &rng)
            sequences.append(order.enumerated().map { Step.recreateEvents($1, first: $0 == 0, last: $0 == nodes - 1) })
        }
        if features.contains(.longLock) {
            let node = Int.random(in: 0..<nodes, using: &rng)
            schemaState.held = node
            sequences.append([.holdLock(node)])
        }
        // A random merge: each next step drawn among all the steps left (each feature's in its order).
        var plan: [[Step]] = [first]
        while !sequences.isEmpty {
            var pick = Int.random(in: 0..<sequences.reduce(0) { $0 + $1.count }, using: &rng)
            let index = sequences.firstIndex { sequence in
                if pick < sequence.count { return true }
                pick -= sequence.count
                return false
            }!
            plan.append([sequences[index].removeFirst()])
            if sequences[index].isEmpty { sequences.remove(at: index) }
        }
        if let laterLocal {
            // In the second half: the owner's rows wait parked there first.
            let at = Int.random(in: max(1, plan.count / 2)...plan.count, using: &rng)
            plan.insert([laterLocal], at: at)
        }
        // The held node's transactions of that phase run in the next one: there must be one.
        if plan.last?.contains(where: { if case .holdLock = $0 { return true } else { return false } }) == true { plan.append([]) }
        return plan
    }

    /// The actions of `step`, and what they change in where the node stands.
    mutating func perform(_ step: Step, nodes: Int) -> [Action] {
        switch step {
        case .createLocal(let node):
            schemaState.localNodes.insert(node)
            return [.migrate(node: node, sql: "CREATE TABLE \(Self.localTable) (id INTEGER PRIMARY KEY, v TEXT);")]
        case .renameTable(let node):
            schemaState.renamedTable.insert(node)
            return [.migrate(node: node, sql: "ALTER TABLE customer RENAME TO customers;")]
        case .renameKey(let node):
            let write = kvWrite(node: node)
            schemaState.renamedKey.insert(node)
            return [.migrate(node: node, sql: write + "\nALTER TABLE kv RENAME COLUMN k TO key;")]
        case .dropAndAdd(let node):
            schemaState.profilesMigrated.insert(node)
            return [.migrateStopped(node: node, sql: "ALTER TABLE profiles DROP COLUMN secret;\nALTER TABLE profiles ADD COLUMN color TEXT;")]
        case .recreateEvents(let node, let first, let last):
            var actions: [Action] = []
            if first {
                schemaState.eventsFrozen = true
                actions.append(
                    .agree(
                        query: "SELECT id, quote(v) FROM events ORDER BY id;\nSELECT id, __harmonylite__hlc, __harmonylite__node, __harmonylite__deleted "
                            + "FROM __harmonylite__events_change_log ORDER BY id;", what: "events before it is dropped"))
            }
            var sql = "DROP TABLE events;\nCREATE TABLE events (id INTEGER PRIMARY KEY, v TEXT, w TEXT);"
            if last {
                schemaState.eventsFrozen = false
                schemaState.eventsRecreated = true
                // The old table's rows are gone everywhere (DROP TABLE is not replicated, but every node ran it).
                let old = (schemaState.owned["events"] ?? [:]).keys
                for key in old { schemaState.owned["events", default: [:]][key] = .some(nil) }
                // Rows under keys the old table had (this node's own, their row clocks still there), written
                // before the capturer first sees the new table: captured whole when it does.
                let keys = old.compactMap(Int.init).filter { $0 / 100 == node }.sorted().prefix(3)
                for id in keys.isEmpty ? [node * 100] : Array(keys) {
                    let (v, w) = ("'re-n\(node)-\(UInt16.random(in: 0...UInt16.max, using: &rng))'", "'w\(id)'")
                    sql += "\nINSERT INTO events VALUES (\(id), \(v), \(w));"
                    schemaState.owned["events", default: [:]]["\(id)"] = .some("\(v)|\(w)")
                    schemaState.eventsKeysAfter.insert(id)
                }
            }
            actions.append(.migrate(node: node, sql: sql))
            return actions
        case .holdLock:
            return []
        }
    }

    /// The feature tables' writes of one transaction of `node`, under the names it has now.
    mutating func schemaFeatureStatements(node: Int) -> [String] {
        var list: [String] = []
        if features.contains(.rollingRenames) {
            if Bool.random(using: &rng) { list.append(kvWrite(node: node)) }
            if Bool.random(using: &rng) {
                let table = schemaState.renamedTable.contains(node) ? "customers" : "customer"
                let (id, shared) = key(node: node)
                list.append(
                    write(
                        table: table, logical: "customer", key: "id", id: "\(id)", shared: shared, node: node,
                        columns: [("name", "'c-n\(node)-\(UInt32.random(in: 0...UInt32.max, using: &rng))'")]))
            }
        }
        if dropsAndAdds && Bool.random(using: &rng) {
            let (id, shared) = key(node: node)
            let name = "'p-n\(node)-\(UInt32.random(in: 0...UInt32.max, using: &rng))'"
            if schemaState.profilesMigrated.contains(node) {
                list.append(
                    write(
                        table: "profiles", logical: "profiles", key: "id", id: "\(id)", shared: shared, node: node,
                        columns: [("name", name), ("color", "'color-\(Int.random(in: 0...1_000_000, using: &rng))'")]))
            } else {
                // A node not migrated yet: its `secret` must never land in `color` (or anywhere) elsewhere.
                list.append(
                    write(
                        table: "profiles", logical: "profiles", key: "id", id: "\(id)", shared: shared, node: node,
                        columns: [("name", name), ("secret", "'secret-n\(node)-\(UInt32.random(in: 0...UInt32.max, using: &rng))'")],
                        expected: "\(name)|NULL"))
            }
        }
        if features.contains(.recreateTable) && !schemaState.eventsFrozen && Int.random(in: 0..<3, using: &rng) == 0 {
            let (id, shared) = key(node: node)
            var columns = [("v", "'e-n\(node)-\(UInt32.random(in: 0...UInt32.max, using: &rng))'")]
            if schemaState.eventsRecreated { columns.append(("w", "'w-n\(node)-\(UInt16.random(in: 0...UInt16.max, using: &rng))'")) }
            let statement = write(
                table: "events", logical: "events", key: "id", id: "\(id)", shared: shared, node: node, columns: columns,
                expected: schemaState.eventsRecreated ? nil : "\(columns[0].1)|NULL")
            // (A delete of a key the new table lacks deletes nothing: its old row clock stays as it was.)
            if schemaState.eventsRecreated && statement.hasPrefix("INSERT") { schemaState.eventsKeysAfter.insert(id) }
            list.append(statement)
        }
        if features.contains(.oneNodeTable) && node == schemaState.localOwner && Bool.random(using: &rng) {
            let id = node * 100 + Int.random(in: 0..<10, using: &rng)
            list.append(
                write(
                    table: Self.localTable, logical: Self.localTable, key: "id", id: "\(id)", shared: false, node: node,
                    columns: [("v", "'l-n\(node)-\(UInt32.random(in: 0...UInt32.max, using: &rng))'")]))
        }
        return list
    }

    /// A key: owned (node × 100 + 0..<10) three times in four, shared (1000..<1005) otherwise.
    private mutating func key(node: Int) -> (Int, shared: Bool) {
        Int.random(in: 0..<4, using: &rng) == 0 ? (1000 + Int.random(in: 0..<5, using: &rng), true) : (node * 100 + Int.random(in: 0..<10, using: &rng), false)
    }

    private mutating func kvWrite(node: Int) -> String {
        let shared = Int.random(in: 0..<4, using: &rng) == 0
        let key = shared ? "'kv-s\(Int.random(in: 0..<5, using: &rng))'" : "'kv-n\(node)-\(Int.random(in: 0..<10, using: &rng))'"
        return write(
            table: "kv", logical: "kv", key: schemaState.renamedKey.contains(node) ? "key" : "k", id: key, shared: shared, node: node,
            columns: [("v", "'kv-n\(node)-\(UInt32.random(in: 0...UInt32.max, using: &rng))'")])
    }

    /// An upsert (a delete one time in five) of one row; an owned row's expected final value is recorded
    /// (`expected`, or the columns' literals joined by `|`).
    private mutating func write(
        table: String, logical: String, key: String, id: String, shared: Bool, node: Int,
        columns: [(String, String)], expected: String? = nil
    ) -> String {
        if Int.random(in: 0..<5, using: &rng) == 0 {
            if !shared { schemaState.owned[logical, default: [:]][id] = .some(nil) }
            return "DELETE FROM \(table) WHERE \(key) = \(id);"
        }
        if !shared { schemaState.owned[logical, default: [:]][id] = .some(expected ?? columns.map(\.1).joined(separator: "|")) }
        return "INSERT INTO \(table) (\(([key] + columns.map(\.0)).joined(separator: ", "))) VALUES (\(([id] + columns.map(\.1)).joined(separator: ", "))) "
            + "ON CONFLICT (\(key)) DO UPDATE SET \(columns.map { "\($0.0) = excluded.\($0.0)" }.joined(separator: ", "));"
    }

    /// Queries that must print nothing on each node: no value of `secret` anywhere in profiles (in `color`,
    /// where a rename guessed from DROP + ADD put it, or in `name`).
    func secretChecks(nodes: Int) -> [(node: Int, query: String)] {
        guard dropsAndAdds else { return [] }
        return (0..<nodes).map { node in
            let color = schemaState.profilesMigrated.contains(node) ? "CAST(color AS TEXT) LIKE 'secret-%' OR " : ""
            return (node, "SELECT 'a secret in profiles', * FROM profiles WHERE \(color)name LIKE 'secret-%';")
        }
    }

    // MARK: the tables and what they must hold

    var schemaFeatureTables: [String] {
        var list: [String] = []
        if features.contains(.rollingRenames) {
            list += ["CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT);", "CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT);"]
        }
        if dropsAndAdds {
            let secret = features.contains(.dropAndAddAmbiguous) ? "TEXT" : "BLOB"
            list.append("CREATE TABLE profiles (id INTEGER PRIMARY KEY, name TEXT, secret \(secret));")
        }
        if features.contains(.recreateTable) { list.append("CREATE TABLE events (id INTEGER PRIMARY KEY, v TEXT);") }
        return list
    }

    /// The shared feature tables under their final names and keys (every node migrated by the end).
    private var finalTables: [(logical: String, name: String, key: String, columns: [String])] {
        var list: [(String, String, String, [String])] = []
        if features.contains(.rollingRenames) { list += [("kv", "kv", "key", ["v"]), ("customer", "customers", "id", ["name"])] }
        if dropsAndAdds { list.append(("profiles", "profiles", "id", ["name", "color"])) }
        if features.contains(.recreateTable) { list.append(("events", "events", "id", ["v", "w"])) }
        return list
    }

    var schemaFeatureDumps: [String] {
        finalTables.map { table in
            "SELECT '\(table.name)', " + ([table.key] + table.columns).map { "quote(\($0))" }.joined(separator: ", ")
                + " FROM \(table.name) ORDER BY \(table.key);"
        }
    }

    var schemaFeatureTablesAtTheEnd: [(name: String, keys: [String])] { finalTables.map { ($0.name, [$0.key]) } }

    var schemaFeatureExpectations: [(query: String, expected: String)] { expectations(finalTables) }

    private func expectations(_ tables: [(logical: String, name: String, key: String, columns: [String])]) -> [(query: String, expected: String)] {
        tables.flatMap { table in
            (schemaState.owned[table.logical] ?? [:]).sorted { $0.key < $1.key }.map { key, value in
                (
                    "SELECT " + table.columns.map { "quote(\($0))" }.joined(separator: ", ") + " FROM \(table.name) WHERE \(table.key) = \(key);",
                    value.map { $0 + "\n" } ?? ""
                )
            }
        }
    }

    /// The untraced-loss check of events looks only at keys written since every node recreated it: the old
    /// table's rows went with DROP TABLE on every node, their row clocks stay.
    func untracedFilter(_ table: String) -> String {
        guard table == "events" && features.contains(.recreateTable) else { return "" }
        let keys = schemaState.eventsKeysAfter.sorted()
        return keys.isEmpty ? " AND 0" : " AND c.id IN (\(keys.map(String.init).joined(separator: ", ")))"
    }

    // MARK: the table one node has

    /// The nodes that have `notes_local` at the end, and those that do not.
    var localTableNodes: [Int] { schemaState.localNodes.sorted() }

    /// Its rows and row clocks: the same on every node that has it.
    var localTableQuery: String {
        "SELECT '\(Self.localTable)', id, quote(v) FROM \(Self.localTable) ORDER BY id;\nSELECT id, __harmonylite__hlc, __harmonylite__node, __harmonylite__deleted "
            + "FROM __harmonylite__\(Self.localTable)_change_log ORDER BY id;"
    }

    var localTableExpectations: [(query: String, expected: String)] {
        expectations([(Self.localTable, Self.localTable, "id", ["v"])])
    }

    /// Whether the owner wrote a row of it: then the nodes without it have parked rows.
    var localTableWritten: Bool { !(schemaState.owned[Self.localTable] ?? [:]).isEmpty }
}
