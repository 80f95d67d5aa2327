import TestSupport

/// A randomized application workload, generated from a seed: a schema and, for every node, a list of
/// transactions (SQL for the sqlite3 shell). Replaying a seed gives the same workload.
///
/// Keys come from two ranges per table: keys that only one node ever writes ("owned": their final value
/// is known — the owner's last write), and keys every node writes ("shared": concurrent conflicts that
/// last-writer-wins must settle identically everywhere).
struct Workload {
    /// What the generated application uses. A feature is left out of a profile while replication does not
    /// handle it yet (each is listed in the README's known limits until then).
    struct Features: OptionSet, CustomStringConvertible {
        let rawValue: Int
        /// Composite primary keys (two columns).
        static let compositeKeys = Features(rawValue: 1 << 0)
        static let withoutRowID = Features(rawValue: 1 << 1)
        /// Text primary keys, values with quotes, non-ASCII, empty strings; blobs; reals; NULLs.
        static let awkwardValues = Features(rawValue: 1 << 2)
        /// Multi-statement transactions touching several tables.
        static let multiTableTransactions = Features(rawValue: 1 << 3)
        /// Deletes and re-inserts of the same key.
        static let deletes = Features(rawValue: 1 << 4)
        /// Updates that change a row's primary key.
        static let keyChanges = Features(rawValue: 1 << 5)
        /// The application's own triggers (an audit table filled by a trigger).
        static let applicationTriggers = Features(rawValue: 1 << 6)
        /// UNIQUE columns, and values moved between rows inside one transaction.
        static let uniqueSwaps = Features(rawValue: 1 << 7)
        /// Foreign keys with ON DELETE CASCADE.
        static let foreignKeyCascades = Features(rawValue: 1 << 8)
        /// Text keys with COLLATE NOCASE, updated to a value that differs only in case.
        static let caseInsensitiveKeys = Features(rawValue: 1 << 9)
        /// Migrations while the workload runs, on every node at a different moment: ADD COLUMN to t0 (the
        /// node's later writes fill it) and CREATE TABLE of a new table the node then writes to; later DROP
        /// COLUMN of the added column (while other nodes may still send it).
        static let migrations = Features(rawValue: 1 << 10)
        /// Rows of every node claim the same values of UNIQUE indexes at the same time — a plain UNIQUE column
        /// and a partial index with its own collation — and give them up again: conflicts whose outcome must
        /// be a function of the rows' final versions, not of the order the changes arrived in.
        static let uniqueClaims = Features(rawValue: 1 << 11)

        /// Rolling renames (issue 20): `ALTER TABLE customer RENAME TO customers` and `ALTER TABLE kv RENAME COLUMN
        /// k TO key` (the latter in one script with a write to kv), run on one node at a time, in a seeded order,
        /// with writes from every node in between; nodes not migrated yet keep writing under the old names.
        static let rollingRenames = Features(rawValue: 1 << 12)
        /// `ALTER TABLE profiles DROP COLUMN secret; ALTER TABLE profiles ADD COLUMN color TEXT;` on a node
        /// stopped for it, one node after the other, with writes in between: no value of `secret` may ever land
        /// in `color` (or anywhere) on any node, and the rows converge. `secret` is `BLOB`, a definition no
        /// other column has, so SQLite's record makes the drop certain (docs/schema-changes.md, rule 3).
        static let dropAndAdd = Features(rawValue: 1 << 13)
        /// `dropAndAdd` on the issue's own table, `profiles (id, name TEXT, secret TEXT)`: then `name` could be
        /// `secret` renamed after the old `name` was dropped (the same text), the fate of `secret` is unknown on
        /// a node migrated while stopped: the values of `secret` the other nodes wrote before their own migration
        /// are kept aside there (visible with `-parked`, never written into any column), and the rows converge.
        static let dropAndAddAmbiguous = Features(rawValue: 1 << 17)
        /// `DROP TABLE events; CREATE TABLE events (…)` with the same key, on every node in turn while it runs
        /// (after events converged; no writes to it until every node recreated it; the last node writes rows
        /// under keys the old table had in the same script): the new table's rows replicate.
        static let recreateTable = Features(rawValue: 1 << 14)
        /// A table (`notes_local`) one node creates at the start and writes in the same transactions as shared
        /// tables; a second node creates it mid-run. The shared tables' rows reach every node; the local rows
        /// wait parked on the third node (and only they), and apply on the second once it has the table.
        static let oneNodeTable = Features(rawValue: 1 << 15)
        /// One node's application holds the write lock (`BEGIN IMMEDIATE` and writes) for longer than the
        /// workers' heartbeat timeout while the others write: no worker of that node is restarted.
        static let longLock = Features(rawValue: 1 << 16)

        /// The schema changes and the long lock: the workload runs in phases, with these between them.
        static let schemaChanges: Features = [.rollingRenames, .dropAndAdd, .dropAndAddAmbiguous, .recreateTable, .oneNodeTable, .longLock]

        /// Features whose runs fail on main today, with the cause: left out of `supported` (and CI), run when
        /// named in `HL_WORKLOAD_FEATURES` (or with `all`).
        static let knownFailing: [(Features, String)] = []

        /// What the CI runs: every feature. (`uniqueClaims`, and under `ArrivalOrderChaos` `uniqueSwaps`, failed
        /// on the applier that settled UNIQUE conflicts by arrival order, before issue 19.)
        static let supported: Features = all.subtracting(Features(knownFailing.map(\.0)))
        static let all: Features = [
            .compositeKeys, .withoutRowID, .awkwardValues, .multiTableTransactions, .deletes, .keyChanges,
            .applicationTriggers, .uniqueSwaps, .foreignKeyCascades, .caseInsensitiveKeys, .migrations, .uniqueClaims,
            .rollingRenames, .dropAndAdd, .dropAndAddAmbiguous, .recreateTable, .oneNodeTable, .longLock,
        ]

        static let named: [(Features, String)] = [
            (.compositeKeys, "compositeKeys"), (.withoutRowID, "withoutRowID"), (.awkwardValues, "awkwardValues"),
            (.multiTableTransactions, "multiTableTransactions"), (.deletes, "deletes"), (.keyChanges, "keyChanges"),
            (.applicationTriggers, "applicationTriggers"), (.uniqueSwaps, "uniqueSwaps"),
            (.foreignKeyCascades, "foreignKeyCascades"), (.caseInsensitiveKeys, "caseInsensitiveKeys"),
            (.migrations, "migrations"), (.uniqueClaims, "uniqueClaims"), (.rollingRenames, "rollingRenames"),
            (.dropAndAdd, "dropAndAdd"), (.recreateTable, "recreateTable"), (.oneNodeTable, "oneNodeTable"), (.longLock, "longLock"),
            (.dropAndAddAmbiguous, "dropAndAddAmbiguous"),
        ]

        var description: String {
            return "[" + Self.named.filter { contains($0.0) }.map(\.1).joined(separator: ", ") + "]"
        }
    }

    struct Table {
        var name: String
        /// Key column names; one or two.
        var keys: [String]
        var textKey: Bool
        var withoutRowID: Bool
        var createSQL: String
    }

    let seed: UInt64
    let features: Features
    private(set) var tables: [Table] = []
    private(set) var schema = ""
    /// The run, phase by phase: each phase's actions (migrations, a stopped node, a held lock), then its
    /// transactions on every node at once. Without the `schemaChanges` features, one phase and no action.
    private(set) var phases: [Phase] = []
    /// (table, key literal) → the SQL value list the owner wrote last, or nil if its last write deleted it.
    private(set) var ownedFinalRows: [String: [String: String?]] = [:]

    /// Per node, its transactions in order (every phase's, one after the other).
    var transactions: [[String]] {
        guard let first = phases.first else { return [] }
        return first.transactions.indices.map { node in phases.flatMap { $0.transactions[node] } }
    }

    /// What is done between two phases of writes (a barrier: every node's writes of the phase before are done).
    enum Action: CustomStringConvertible {
        /// The application runs this on a running node, in one sqlite3 call (a migration).
        case migrate(node: Int, sql: String)
        /// The node is stopped, the application runs this, the node starts again (the usual stop–migrate–start).
        case migrateStopped(node: Int, sql: String)
        /// The application takes the write lock (`sql` starts with `BEGIN IMMEDIATE` and writes) and holds it
        /// through the phase that follows, at least `HL_WORKLOAD_LOCK_SECONDS`; then COMMIT.
        case holdLock(node: Int, sql: String)
        /// Wait until `query` answers the same on every node.
        case agree(query: String, what: String)

        var description: String {
            switch self {
            case .migrate(let node, let sql): "node \(node + 1) runs \(sql.replacingOccurrences(of: "\n", with: " ").prefix(160))"
            case .migrateStopped(let node, let sql): "node \(node + 1) stopped, runs \(sql.replacingOccurrences(of: "\n", with: " ")), started"
            case .holdLock(let node, _): "node \(node + 1)'s application holds the write lock"
            case .agree(_, let what): "every node agrees on \(what)"
            }
        }
    }

    struct Phase {
        var actions: [Action] = []
        /// Per node, its transactions in this phase.
        var transactions: [[String]] = []
        /// (node, query) that must print nothing once the phase's writes are done (and at the end).
        var checks: [(node: Int, query: String)] = []
    }

    /// The seeded generator (internal for the schema-change features' extension, SchemaChanges.swift).
    var rng: SplitMix64
    /// Where each node stands in the schema-change features (names, migrations done), and their rows.
    var schemaState = SchemaState()

    init(seed: UInt64, features: Features, nodes: Int, transactionsPerNode: Int) {
        self.seed = seed
        self.features = features
        rng = SplitMix64(seed: seed)
        makeSchema()
        // The transaction before which each node migrates (every node migrates, at its own moment). Later (two
        // sqlite3 calls on at least), the node drops the column again; the last transaction at the latest, so
        // every node has dropped it by the end.
        let migrationAt = (0..<nodes).map { _ in features.contains(.migrations) ? Int.random(in: 0..<max(1, transactionsPerNode / 2), using: &rng) : Int.max }
        let dropAt = migrationAt.map { at in
            features.contains(.migrations) ? Int.random(in: min(transactionsPerNode - 1, at + 10)...(transactionsPerNode - 1), using: &rng) : Int.max
        }
        let plan = planSteps(nodes: nodes)
        var index = Array(repeating: 0, count: nodes)
        // Transactions a node did not run in a phase (its application held the lock): run in the next one.
        var carried = Array(repeating: 0, count: nodes)
        for (number, steps) in plan.enumerated() {
            var phase = Phase()
            var holding: Int?
            for step in steps {
                if case .holdLock(let node) = step { holding = node } else { phase.actions += perform(step, nodes: nodes) }
            }
            let share = transactionsPerNode / plan.count + (number < transactionsPerNode % plan.count ? 1 : 0)
            for node in 0..<nodes {
                if node == holding {
                    let held = transaction(node: node, nodes: nodes, opening: "BEGIN IMMEDIATE;", closing: "")
                    phase.actions.append(.holdLock(node: node, sql: held))
                    phase.transactions.append([])
                    carried[node] += share
                    continue
                }
                var list: [String] = []
                for _ in 0..<(share + carried[node]) {
                    let at = index[node]
                    index[node] += 1
                    if at == migrationAt[node] { migratedNodes.insert(node) }
                    if at == dropAt[node] { migratedNodes.remove(node) }
                    let body = transaction(node: node, nodes: nodes)
                    if at < migrationAt[node] {
                        list.append(body)
                    } else {
                        let migration = at == migrationAt[node] ? Self.migration : (at == dropAt[node] ? Self.dropMigration : "")
                        list.append(migration + body + lateTableWrite(node: node))
                    }
                }
                carried[node] = 0
                phase.transactions.append(list)
            }
            phase.checks = secretChecks(nodes: nodes)
            phases.append(phase)
        }
    }

    /// The second migration every node runs later: the column goes again.
    static let dropMigration = "ALTER TABLE t0 DROP COLUMN extra;\n"

    /// The migration every node runs once, at its own moment.
    static let migration = "ALTER TABLE t0 ADD COLUMN extra TEXT;\nCREATE TABLE late (id INTEGER PRIMARY KEY, v TEXT);\n"

    /// Nodes whose migration is behind the transaction being generated: their writes to t0 fill `extra`.
    private var migratedNodes: Set<Int> = []

    private mutating func lateTableWrite(node: Int) -> String {
        let id = node * 100 + Int.random(in: 0..<10, using: &rng)
        let value = "'late-n\(node)-\(UInt16.random(in: 0...UInt16.max, using: &rng))'"
        ownedFinalRows["late", default: [:]]["\(id)"] = .some(value)
        return "\nINSERT INTO late VALUES (\(id), \(value)) ON CONFLICT (id) DO UPDATE SET v = excluded.v;"
    }

    // MARK: schema

    private mutating func makeSchema() {
        let count = Int.random(in: 2...4, using: &rng)
        for index in 0..<count {
            let composite = features.contains(.compositeKeys) && Bool.random(using: &rng)
            let textKey = features.contains(.awkwardValues) && Bool.random(using: &rng)
            let withoutRowID = features.contains(.withoutRowID) && Bool.random(using: &rng)
            let name = "t\(index)"
            let keys = composite ? ["a", "b"] : ["id"]
            let keyType = textKey ? "TEXT" : "INTEGER"
            var columns = keys.map { "\($0) \(keyType) NOT NULL" } + ["v TEXT", "n INTEGER", "r REAL", "data BLOB"]
            columns.append("PRIMARY KEY (\(keys.joined(separator: ", ")))")
            let sql = "CREATE TABLE \(name) (\(columns.joined(separator: ", ")))\(withoutRowID ? " WITHOUT ROWID" : "");"
            tables.append(Table(name: name, keys: keys, textKey: textKey, withoutRowID: withoutRowID, createSQL: sql))
        }
        var extra: [String] = []
        if features.contains(.applicationTriggers) {
            // Derived data: a trigger counts the inserts into t0. Replicated as rows of its own, it must not be
            // computed again on the nodes that apply them.
            extra.append("CREATE TABLE totals (tbl TEXT PRIMARY KEY, inserts INTEGER NOT NULL);")
            extra.append(
                "CREATE TRIGGER count_t0 AFTER INSERT ON t0 BEGIN INSERT INTO totals VALUES ('t0', 1) ON CONFLICT (tbl) DO UPDATE SET inserts = inserts + 1; END;"
            )
        }
        if features.contains(.uniqueSwaps) {
            // Nodes claim the same badge codes for rows of their own at the same time: genuine conflicts.
            extra.append("CREATE TABLE badges (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, node INTEGER);")
            // Each node owns two rows whose UNIQUE holders it swaps inside one transaction.
            extra.append("CREATE TABLE seats (id INTEGER PRIMARY KEY, holder TEXT NOT NULL UNIQUE);")
            for node in 0..<Self.maximumNodes {
                extra.append("INSERT INTO seats VALUES (\(node * 2), 'n\(node)-a'), (\(node * 2 + 1), 'n\(node)-b');")
            }
        }
        if features.contains(.foreignKeyCascades) {
            extra.append("CREATE TABLE parents (id INTEGER PRIMARY KEY, name TEXT);")
            extra.append("CREATE TABLE children (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parents (id) ON DELETE CASCADE, name TEXT);")
        }
        if features.contains(.caseInsensitiveKeys) {
            extra.append("CREATE TABLE names (k TEXT PRIMARY KEY COLLATE NOCASE, v TEXT);")
        }
        if features.contains(.uniqueClaims) {
            extra.append("CREATE TABLE claims (id INTEGER PRIMARY KEY, email TEXT UNIQUE, handle TEXT, active INTEGER NOT NULL, node INTEGER);")
            extra.append("CREATE UNIQUE INDEX claims_handle ON claims (handle COLLATE NOCASE) WHERE active = 1;")
        }
        extra += schemaFeatureTables
        schema = (tables.map(\.createSQL) + extra).joined(separator: "\n")
    }

    static let maximumNodes = 5

    // MARK: transactions

    private mutating func transaction(node: Int, nodes: Int, opening: String = "BEGIN;", closing: String = "\nCOMMIT;") -> String {
        let statements = features.contains(.multiTableTransactions) ? Int.random(in: 1...4, using: &rng) : 1
        var body: [String] = []
        var touched: Set<String> = []
        for _ in 0..<statements {
            let table = tables[Int.random(in: 0..<tables.count, using: &rng)]
            // Owned keys: 0..<20 offset by node; shared keys: 1000..<1010.
            let shared = Int.random(in: 0..<4, using: &rng) == 0
            let number = shared ? 1000 + Int.random(in: 0..<10, using: &rng) : node * 100 + Int.random(in: 0..<20, using: &rng)
            let key = keyLiterals(table, number)
            let identity = "\(table.name):\(key.joined(separator: ","))"
            // One statement per key per transaction keeps the owned-final bookkeeping exact.
            guard touched.insert(identity).inserted else { continue }
            let choice = Int.random(in: 0..<10, using: &rng)
            if features.contains(.deletes) && choice < 2 {
                body.append("DELETE FROM \(table.name) WHERE \(match(table, key));")
                if !shared { ownedFinalRows[table.name, default: [:]][key.joined(separator: ",")] = .some(nil) }
            } else if features.contains(.keyChanges) && choice == 2 && !shared {
                // Move the row to another owned key (if it exists); both keys' final states are then known
                // only if the source existed, so the target is reset by an upsert right after.
                let target = keyLiterals(table, node * 100 + 50 + Int.random(in: 0..<10, using: &rng))
                let targetIdentity = "\(table.name):\(target.joined(separator: ","))"
                guard touched.insert(targetIdentity).inserted else { continue }
                body.append("DELETE FROM \(table.name) WHERE \(match(table, target));")
                body.append("UPDATE \(table.name) SET \(zip(table.keys, target).map { "\($0) = \($1)" }.joined(separator: ", ")) WHERE \(match(table, key));")
                let values = rowValues(node: node)
                body.append(upsert(table, key: target, values: values, node: node))
                ownedFinalRows[table.name, default: [:]][key.joined(separator: ",")] = .some(nil)
                ownedFinalRows[table.name, default: [:]][target.joined(separator: ",")] = .some(values.joined(separator: ", "))
            } else {
                let values = rowValues(node: node)
                body.append(upsert(table, key: key, values: values, node: node))
                if !shared { ownedFinalRows[table.name, default: [:]][key.joined(separator: ",")] = .some(values.joined(separator: ", ")) }
            }
        }
        body += featureStatements(node: node)
        if features.contains(.uniqueClaims) && Bool.random(using: &rng) { body.append(claimStatement(node: node)) }
        body += schemaFeatureStatements(node: node)
        return (features.contains(.foreignKeyCascades) ? "PRAGMA foreign_keys = ON;\n" : "") + opening + "\n" + body.joined(separator: "\n") + closing
    }

    private var seatSwaps: [Int: Int] = [:]
    private var families: [Int: Int] = [:]

    /// One statement group for one of the advanced features, now and then.
    private mutating func featureStatements(node: Int) -> [String] {
        var choices: [Features] = [.uniqueSwaps, .foreignKeyCascades, .caseInsensitiveKeys].filter { features.contains($0) }
        if features.contains(.applicationTriggers) { choices.append(.applicationTriggers) }
        guard !choices.isEmpty, Int.random(in: 0..<3, using: &rng) == 0 else { return [] }
        let feature = choices[Int.random(in: 0..<choices.count, using: &rng)]
        switch feature {
        case .uniqueSwaps:
            // a ↔ b through a temporary value, as applications swap unique values.
            let swaps = seatSwaps[node, default: 0] + 1
            if Bool.random(using: &rng) {
                let id = 10_000 + node * 1000 + swaps
                let code = ["gold", "silver", "bronze"][Int.random(in: 0..<3, using: &rng)]
                return [
                    "DELETE FROM badges WHERE code = '\(code)' AND node = \(node);",
                    "INSERT INTO badges VALUES (\(id), '\(code)', \(node)) ON CONFLICT DO NOTHING;",
                ]
            }
            seatSwaps[node] = swaps
            let (first, second) = swaps % 2 == 1 ? ("b", "a") : ("a", "b")
            ownedFinalRows["seats", default: [:]]["\(node * 2)"] = .some("'n\(node)-\(first)'")
            ownedFinalRows["seats", default: [:]]["\(node * 2 + 1)"] = .some("'n\(node)-\(second)'")
            return [
                "UPDATE seats SET holder = 'n\(node)-tmp' WHERE id = \(node * 2);",
                "UPDATE seats SET holder = 'n\(node)-\(second)' WHERE id = \(node * 2 + 1);",
                "UPDATE seats SET holder = 'n\(node)-\(first)' WHERE id = \(node * 2);",
            ]
        case .foreignKeyCascades:
            // A family per node: a parent with children, deleted now and then (the cascade deletes them).
            let parent = node * 1000 + families[node, default: 0]
            if Bool.random(using: &rng) || families[node] == nil {
                families[node] = families[node, default: 0] + 1
                let id = node * 1000 + families[node]!
                ownedFinalRows["parents", default: [:]]["\(id)"] = .some("'p\(id)'")
                return ["INSERT INTO parents VALUES (\(id), 'p\(id)');"]
                    + (0..<3).map { "INSERT INTO children VALUES (\(id * 10 + $0), \(id), 'c\($0)');" }
            }
            ownedFinalRows["parents", default: [:]]["\(parent)"] = .some(nil)
            return ["DELETE FROM parents WHERE id = \(parent);"]
        case .caseInsensitiveKeys:
            let number = Int.random(in: 0..<5, using: &rng)
            let lower = "n\(node)key\(number)"
            let value = "'v\(UInt16.random(in: 0...UInt16.max, using: &rng))'"
            if Bool.random(using: &rng) {
                ownedFinalRows["names", default: [:]]["'\(lower)'"] = .some(value)
                return ["INSERT INTO names VALUES ('\(lower)', \(value)) ON CONFLICT (k) DO UPDATE SET k = excluded.k, v = excluded.v;"]
            }
            // The key changes only in case: the same row under NOCASE.
            return ["UPDATE names SET k = \(Bool.random(using: &rng) ? "upper" : "lower")(k) WHERE k = '\(lower)';"]
        default:
            return [
                "INSERT INTO t0 (\(tables[0].keys.joined(separator: ", ")), v) VALUES (\(keyLiterals(tables[0], 3000 + node * 100 + Int.random(in: 0..<1000, using: &rng)).joined(separator: ", ")), 'counted') ON CONFLICT DO NOTHING;"
            ]
        }
    }

    /// A node's rows (ids of its own) claim values from small pools every node draws from: an email (plain
    /// UNIQUE) and a handle (unique among active rows, whatever its case), or give them up. Locally the
    /// application's statement does nothing when another row already holds the value here (OR IGNORE); the
    /// other nodes, which have not seen that row yet, meet the conflict when the change arrives.
    private mutating func claimStatement(node: Int) -> String {
        let id = 20_000 + node * 100 + Int.random(in: 0..<4, using: &rng)
        let email = "'e\(Int.random(in: 0..<4, using: &rng))@x'"
        let handles = ["'h0'", "'H0'", "'h1'", "'H1'", "'h2'"]
        let handle = handles[Int.random(in: 0..<handles.count, using: &rng)]
        let active = Int.random(in: 0..<3, using: &rng) == 0 ? 0 : 1
        switch Int.random(in: 0..<6, using: &rng) {
        case 0, 1: return "INSERT OR IGNORE INTO claims VALUES (\(id), \(email), \(handle), \(active), \(node));"
        case 2: return "UPDATE OR IGNORE claims SET email = \(email) WHERE id = \(id);"
        case 3: return "UPDATE OR IGNORE claims SET handle = \(handle), active = \(active) WHERE id = \(id);"
        case 4: return "UPDATE claims SET email = NULL, active = 0 WHERE id = \(id);"
        default: return "DELETE FROM claims WHERE id = \(id);"
        }
    }

    private func keyLiterals(_ table: Table, _ number: Int) -> [String] {
        table.keys.enumerated().map { position, _ in
            let value = number * 7 + position
            return table.textKey ? "'k\(value)\(position == 0 ? "'' é" : "")'" : "\(value)"
        }
    }

    private func match(_ table: Table, _ key: [String]) -> String {
        zip(table.keys, key).map { "\($0) = \($1)" }.joined(separator: " AND ")
    }

    private func upsert(_ table: Table, key: [String], values: [String], node: Int) -> String {
        var columns = table.keys + ["v", "n", "r", "data"]
        var literals = key + values
        var updates = "v = excluded.v, n = excluded.n, r = excluded.r, data = excluded.data"
        if table.name == "t0" && migratedNodes.contains(node) {
            columns.append("extra")
            literals.append("'x-n\(node)-\(values[1])'")
            updates += ", extra = excluded.extra"
        }
        return "INSERT INTO \(table.name) (\(columns.joined(separator: ", "))) VALUES (\(literals.joined(separator: ", "))) "
            + "ON CONFLICT (\(table.keys.joined(separator: ", "))) DO UPDATE SET \(updates);"
    }

    /// SQL literals for v, n, r, data: as `quote()` prints them, so they compare with a dump.
    private mutating func rowValues(node: Int) -> [String] {
        let awkward = features.contains(.awkwardValues)
        let text: String
        switch awkward ? Int.random(in: 0..<5, using: &rng) : 0 {
        case 1: text = "''"
        case 2: text = "'it''s ünïcödé ✓'"
        case 3: text = "NULL"
        case 4: text = "'" + String(repeating: "x", count: Int.random(in: 100...3000, using: &rng)) + "'"
        default: text = "'n\(node)-\(UInt32.random(in: 0...UInt32.max, using: &rng))'"
        }
        let number = "\(Int64.random(in: -1_000_000...1_000_000, using: &rng))"
        let real = awkward ? "\(Int.random(in: -999...999, using: &rng)).5" : "NULL"
        let blob =
            awkward && Bool.random(using: &rng)
            ? "X'" + (0..<Int.random(in: 0...40, using: &rng)).map { _ in String(format: "%02X", UInt8.random(in: 0...255, using: &rng)) }.joined() + "'"
            : "NULL"
        return [text, number, real, blob]
    }

    // MARK: checking

    /// A query printing every row of every table with `quote()`, in key order: equal dumps, equal data.
    var dumpQuery: String {
        var queries = tables.map { table in
            return "SELECT '\(table.name)', " + (table.keys + ["v", "n", "r", "data"]).map { "quote(\($0))" }.joined(separator: ", ")
                + " FROM \(table.name) ORDER BY \(table.keys.joined(separator: ", "));"
        }
        if features.contains(.migrations) { queries.append("SELECT 'late', * FROM late ORDER BY id;") }
        if features.contains(.applicationTriggers) { queries.append("SELECT 'totals', * FROM totals ORDER BY tbl;") }
        if features.contains(.uniqueSwaps) {
            queries.append("SELECT 'seats', * FROM seats ORDER BY id;")
            queries.append("SELECT 'badges', * FROM badges ORDER BY id;")
        }
        if features.contains(.foreignKeyCascades) {
            queries.append("SELECT 'parents', * FROM parents ORDER BY id;")
            queries.append("SELECT 'children', * FROM children ORDER BY id;")
        }
        if features.contains(.caseInsensitiveKeys) { queries.append("SELECT 'names', k, v FROM names ORDER BY k;") }
        if features.contains(.uniqueClaims) { queries.append("SELECT 'claims', id, quote(email), quote(handle), active, node FROM claims ORDER BY id;") }
        queries += schemaFeatureDumps
        return queries.joined(separator: "\n")
    }

    /// Every table with its key columns, the generated ones and the feature tables.
    var keyedTables: [(name: String, keys: [String])] {
        var list = tables.map { ($0.name, $0.keys) }
        if features.contains(.applicationTriggers) { list.append(("totals", ["tbl"])) }
        if features.contains(.uniqueSwaps) { list += [("seats", ["id"]), ("badges", ["id"])] }
        if features.contains(.foreignKeyCascades) { list += [("parents", ["id"]), ("children", ["id"])] }
        if features.contains(.caseInsensitiveKeys) { list.append(("names", ["k"])) }
        if features.contains(.migrations) { list.append(("late", ["id"])) }
        if features.contains(.uniqueClaims) { list.append(("claims", ["id"])) }
        list += schemaFeatureTablesAtTheEnd
        return list
    }

    /// Every row clock of every table, in key order: equal on every node once they converge. The keys of
    /// `names` (COLLATE NOCASE) are compared case-folded: a row clock keeps the case its key had when it was
    /// first written on that node, which is the same key.
    var clockQuery: String {
        keyedTables.map { table in
            let keys = table.keys.map { table.name == "names" ? "upper(quote(\($0)))" : "quote(\($0))" }.joined(separator: ", ")
            return "SELECT '\(table.name)', \(keys), __harmonylite__hlc, __harmonylite__node, __harmonylite__deleted "
                + "FROM \"__harmonylite__\(table.name)_change_log\" ORDER BY \(table.keys.joined(separator: ", "));"
        }.joined(separator: "\n")
    }

    /// The conflict records: the rows held aside, by which row and version. Equal on every node.
    static let conflictsQuery = "SELECT table_name, losing_key, losing_stamp, losing_writer, winning_key FROM __harmonylite___conflicts ORDER BY 1, 2;"

    /// Rows whose row clock says they exist but that are gone, and that the conflicts table does not name as
    /// a loser: a write lost without a trace. Must print nothing on every node.
    var untracedLossesQuery: String {
        keyedTables.map { table in
            let keyMatch = table.keys.map { "t.\($0) = c.\($0)" }.joined(separator: " AND ")
            let quoted = table.keys.map { "quote(c.\($0))" }.joined(separator: " || ', ' || ")
            return "SELECT '\(table.name)', \(quoted) FROM __harmonylite__\(table.name)_change_log c WHERE c.__harmonylite__deleted = 0 "
                + "AND NOT EXISTS (SELECT 1 FROM \(table.name) t WHERE \(keyMatch)) "
                + "AND NOT EXISTS (SELECT 1 FROM __harmonylite___conflicts x WHERE x.table_name = '\(table.name)' AND x.losing_key = \(quoted))"
                + untracedFilter(table.name) + ";"
        }.joined(separator: "\n")
    }

    /// For each owned key, a query and its expected answer on every node after convergence.
    var ownedExpectations: [(query: String, expected: String)] {
        var expectations = tables.flatMap { table in
            (ownedFinalRows[table.name] ?? [:]).sorted { $0.key < $1.key }.map { key, values in
                let keyValues = key.split(separator: ",").map(String.init)
                let query =
                    "SELECT " + ["v", "n", "r", "data"].map { "quote(\($0))" }.joined(separator: ", ")
                    + " FROM \(table.name) WHERE \(match(table, keyValues));"
                let expected = values.map { $0.replacingOccurrences(of: ", ", with: "|") + "\n" } ?? ""
                return (query, expected)
            }
        }
        let single: [(table: String, key: String, column: String)] = [
            ("seats", "id", "holder"), ("parents", "id", "name"), ("names", "k", "v"), ("late", "id", "v"),
        ]
        for (table, keyColumn, column) in single {
            for (key, value) in (ownedFinalRows[table] ?? [:]).sorted(by: { $0.key < $1.key }) {
                expectations.append(("SELECT quote(\(column)) FROM \(table) WHERE \(keyColumn) = \(key);", value.map { $0 + "\n" } ?? ""))
            }
        }
        return expectations + schemaFeatureExpectations
    }
}
