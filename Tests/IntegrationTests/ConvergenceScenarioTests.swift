import Foundation
import TestSupport
import Testing

extension ProcessTests {
    /// The scenarios of issue 19 on fresh 3-node clusters (one shard, the sqlite3 shell as the application):
    /// after the same changes, every node must hold the same rows, the same row clocks and the same conflict
    /// records, whatever order the changes reached it in.
    ///
    /// The rule the expectations follow: a row's final version is its highest (stamp, writer) event (a delete
    /// leaves a tombstone). Among rows whose final versions claim the same value of a UNIQUE index (plain,
    /// partial, collated, expression, multi-column where NULLs never conflict), rows are taken in descending
    /// (stamp, writer); a row is present iff none of its UNIQUE values is held by a row already present. A
    /// row that loses is held aside in `__harmonylite___conflicts` (and only while it is held aside), and comes
    /// back when its values are free. Expected values are derived from that rule and the row clocks, never
    /// from what a node happened to do.
    @Suite(.serialized) struct ConvergenceScenarios {
        /// The held-back applier is stopped longer than the default heartbeat timeout might allow under load:
        /// a supervisor restarting it would change the scenario.
        static let patientApplier = "[workers.applier]\nheartbeat_timeout = 30000\n"

        static let conflictsQuery = "SELECT table_name, losing_key, losing_stamp, losing_writer, winning_key FROM __harmonylite___conflicts ORDER BY 1, 2;"

        static let unpublished =
            "SELECT count(*) FROM __harmonylite___change_log_global WHERE id > (SELECT value FROM __harmonylite___meta WHERE key = 'published_through');"

        /// a. `users(id, email UNIQUE, name)`. Node 2's applier is held back; node 1 inserts `(1,'u@x')`, node 2
        /// (not knowing it) inserts `(2,'u@x')` and then moves row 2 to `'z@x'`. The final versions — row 1 with
        /// `u@x`, row 2 with `z@x` — claim nothing in common: both rows everywhere, no conflict record, although
        /// nodes 1 and 3 see the two rows claim `u@x` for a moment and node 2 never does.
        @Test func uniqueSettledByFinalVersionsNotArrivalOrder() throws {
            let cluster = try TestCluster(
                schema: "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name);",
                extraTOML: Array(repeating: Self.patientApplier, count: 3))
            let heldBack = try cluster.pause(.applier, node: 1)
            try cluster.sql(0, "INSERT INTO users VALUES (1, 'u@x', 'ann');")
            // Node 3 holds row 1 before node 2 writes: node 2's insert, later, meets it there and on node 1.
            #expect(try cluster.converge("SELECT count(*) FROM users WHERE id = 1;", to: "1\n", on: [0, 2]))
            Thread.sleep(forTimeInterval: 0.05)
            try cluster.sql(1, "INSERT INTO users VALUES (2, 'u@x', 'bob');")
            // Let nodes 1 and 3 apply the insert (and meet the conflict) before the update frees `u@x`.
            _ = try cluster.converge("SELECT count(*) FROM users WHERE id = 2;", to: "1\n", on: [0, 2], timeout: 10)
            try cluster.sql(1, "UPDATE users SET email = 'z@x' WHERE id = 2;")
            #expect(try cluster.converge(Self.unpublished, to: "0\n", on: [1], timeout: 10))
            heldBack.resume(atLeast: 2)
            try Self.expectSettled(cluster, "a (UNIQUE by arrival order)", rows: "SELECT id, email, name FROM users ORDER BY id;", tables: [("users", ["id"])])
            { _ in
                (rows: "1|u@x|ann\n2|z@x|bob\n", conflicts: "")
            }
        }

        /// b. `seats(id, holder UNIQUE)`, streams R3. Node 1 is down; node 2 moves seat 2 to `'u'`; node 3 (not
        /// knowing it) moves seat 1 to `'u'`, later, and then deletes seat 1. Node 1 starts and fetches all three
        /// at once. Seat 1's final version is a delete: it claims nothing, so seat 2 keeps `'u'` everywhere and
        /// seat 1 is absent, its clock saying deleted.
        @Test func displacedUpsertDoesNotUndoALaterDelete() throws {
            let settings = Self.patientApplier + "[replication_log]\nreplicas = 3\n"
            let cluster = try TestCluster(
                schema: "CREATE TABLE seats (id INTEGER PRIMARY KEY, holder TEXT UNIQUE);",
                extraTOML: Array(repeating: settings, count: 3))
            try cluster.sql(0, "INSERT INTO seats VALUES (1, 'a'), (2, 'b');")
            #expect(try cluster.converge("SELECT id, holder FROM seats ORDER BY id;", to: "1|a\n2|b\n", timeout: 30))
            cluster.stop(0)
            let heldBack = try cluster.pause(.applier, node: 2)
            try cluster.sql(1, "UPDATE seats SET holder = 'u' WHERE id = 2;")
            #expect(try cluster.converge(Self.unpublished, to: "0\n", on: [1], timeout: 10))
            Thread.sleep(forTimeInterval: 0.05)
            try cluster.sql(2, "UPDATE seats SET holder = 'u' WHERE id = 1;")
            #expect(try cluster.converge(Self.unpublished, to: "0\n", on: [2], timeout: 10))
            Thread.sleep(forTimeInterval: 0.05)
            try cluster.sql(2, "DELETE FROM seats WHERE id = 1;")
            #expect(try cluster.converge(Self.unpublished, to: "0\n", on: [2], timeout: 10))
            heldBack.resume()
            try cluster.start(0)
            try cluster.node(0).waitUntilReady(timeout: 60)
            try Self.expectSettled(
                cluster, "b (displaced upsert and a later delete)", rows: "SELECT id, holder FROM seats ORDER BY id;", tables: [("seats", ["id"])]
            ) { _ in
                (rows: "2|u\n", conflicts: "")
            }
            for node in 0..<3 {
                let seat1 = try Clock(cluster: cluster, node: node).version("seats", "id = 1")
                #expect(seat1?.deleted == true, "node \(node + 1): seat 1's row clock does not say deleted: \(String(describing: seat1))")
            }
        }

        /// One kind of UNIQUE index over `accounts(id, org, email, active)`, and the rows of its scenario.
        struct IndexCase: CustomTestStringConvertible, Sendable {
            let name: String
            let index: String
            /// Rows on every node before the contenders are written; none of them may ever be touched.
            let bystanders: [String]
            /// What node 1, then node 2 (later, before it has node 1's rows) insert. Rows 2 and 3 claim the same
            /// value; any other row among them does not (NULLs).
            let fromNode1: [String]
            let fromNode2: [String]
            /// The statement that frees the contended value from row `winner`, and that row's line afterwards.
            let free: @Sendable (_ winner: Int) -> (sql: String, line: String)

            var testDescription: String { name }
        }

        static let indexCases: [IndexCase] = [
            IndexCase(
                name: "partial", index: "CREATE UNIQUE INDEX accounts_email ON accounts (email) WHERE active = 1;",
                bystanders: ["(1, NULL, 'u@x', 0)"], fromNode1: ["(2, NULL, 'u@x', 1)"], fromNode2: ["(3, NULL, 'u@x', 1)"],
                free: { ("UPDATE accounts SET active = 0 WHERE id = \($0);", "\($0)|NULL|'u@x'|0") }),
            IndexCase(
                name: "collate nocase", index: "CREATE UNIQUE INDEX accounts_email ON accounts (email COLLATE NOCASE);",
                bystanders: ["(1, NULL, 'w@x', 1)"], fromNode1: ["(2, NULL, 'u@x', 1)"], fromNode2: ["(3, NULL, 'U@x', 1)"],
                free: { ("UPDATE accounts SET email = 'v@x' WHERE id = \($0);", "\($0)|NULL|'v@x'|1") }),
            IndexCase(
                name: "expression", index: "CREATE UNIQUE INDEX accounts_email ON accounts (lower(email));",
                bystanders: ["(1, NULL, 'w@x', 1)"], fromNode1: ["(2, NULL, 'u@x', 1)"], fromNode2: ["(3, NULL, 'U@X', 1)"],
                free: { ("UPDATE accounts SET email = 'v@x' WHERE id = \($0);", "\($0)|NULL|'v@x'|1") }),
            IndexCase(
                name: "multi-column with NULLs", index: "CREATE UNIQUE INDEX accounts_org_email ON accounts (org, email);",
                bystanders: ["(1, NULL, 'u@x', 1)"], fromNode1: ["(2, 'o', 'u@x', 1)", "(4, NULL, 'u@x', 1)"],
                fromNode2: ["(3, 'o', 'u@x', 1)", "(5, NULL, 'u@x', 1)", "(6, 'o', NULL, 1)"],
                free: { ("UPDATE accounts SET org = 'p' WHERE id = \($0);", "\($0)|'p'|'u@x'|1") }),
        ]

        /// c. Rows 2 and 3 claim the same value of the index concurrently (node 2's applier held back), next
        /// to bystanders the index does not see as holders. The later of 2 and 3 (by final version) stays,
        /// the other is held aside with a conflict record naming the winner; bystanders are untouched. Then
        /// node 3 frees the value from the winner: the held-aside row comes back everywhere and the conflicts
        /// table empties.
        @Test(arguments: indexCases)
        func uniqueIndexSettlesOnItsOwnDefinition(_ scenario: IndexCase) throws {
            let schema = "CREATE TABLE accounts (id INTEGER PRIMARY KEY, org TEXT, email TEXT, active INT);\n" + scenario.index
            let cluster = try TestCluster(schema: schema, extraTOML: Array(repeating: Self.patientApplier, count: 3))
            try cluster.sql(0, "INSERT INTO accounts VALUES \(scenario.bystanders.joined(separator: ", "));")
            let rowsQuery = "SELECT id, quote(org), quote(email), active FROM accounts ORDER BY id;"
            let before = try cluster.sql(0, rowsQuery)
            #expect(try cluster.converge(rowsQuery, to: before, timeout: 30))
            let heldBack = try cluster.pause(.applier, node: 1)
            // Every row as written, read back by each writer before it has the other's rows.
            let writtenOn1 = try cluster.sql(0, "INSERT INTO accounts VALUES \(scenario.fromNode1.joined(separator: ", "));" + rowsQuery)
            Thread.sleep(forTimeInterval: 0.05)
            let writtenOn2 = try cluster.sql(1, "INSERT INTO accounts VALUES \(scenario.fromNode2.joined(separator: ", "));" + rowsQuery)
            #expect(try cluster.converge(Self.unpublished, to: "0\n", on: [0, 1], timeout: 10))
            heldBack.resume(atLeast: 1)
            let written = (writtenOn1 + writtenOn2).split(separator: "\n").reduce(into: [Int: String]()) { rows, line in
                if let id = Int(line.prefix { $0 != "|" }) { rows[id] = String(line) }
            }
            var winner = 0
            try Self.expectSettled(cluster, "c (\(scenario.name) index)", rows: rowsQuery, tables: [("accounts", ["id"])]) { clock in
                guard let two = try clock.version("accounts", "id = 2"), let three = try clock.version("accounts", "id = 3") else {
                    return (rows: "(the row clocks of rows 2 and 3)", conflicts: "")
                }
                // By the rule: the higher (stamp, writer) keeps the value, the other is held aside.
                let (won, lost, lostVersion) = (two.stamp, two.writer) > (three.stamp, three.writer) ? (2, 3, three) : (3, 2, two)
                winner = won
                let rows = written.keys.sorted().filter { $0 != lost }.map { written[$0]! + "\n" }.joined()
                return (rows: rows, conflicts: "accounts|\(lost)|\(lostVersion.stamp)|\(lostVersion.writer)|\(won)\n")
            }
            guard winner != 0 else { return }
            // The winner gives the value up (on the node that wrote neither): the held-aside row comes back.
            let freed = scenario.free(winner)
            try cluster.sql(2, freed.sql)
            try Self.expectSettled(cluster, "c (\(scenario.name) index), value freed", rows: rowsQuery, tables: [("accounts", ["id"])]) { _ in
                let rows = written.keys.sorted().map { $0 == winner ? freed.line : written[$0]! }.map { $0 + "\n" }.joined()
                return (rows: rows, conflicts: "")
            }
        }

        // MARK: checking

        /// A row's final version, from a node's row clock.
        struct Version: Equatable, CustomStringConvertible {
            var stamp: Int64
            var writer: Int64
            var deleted: Bool
            var description: String { "(\(stamp), \(writer)\(deleted ? ", deleted" : ""))" }
        }

        /// Reads row clocks on one node.
        struct Clock {
            let cluster: TestCluster
            let node: Int

            func version(_ table: String, _ match: String) throws -> Version? {
                let line = try cluster.sql(
                    node, "SELECT __harmonylite__hlc, __harmonylite__node, __harmonylite__deleted FROM \"__harmonylite__\(table)_change_log\" WHERE \(match);")
                let fields = line.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|").compactMap { Int64($0) }
                guard fields.count == 3 else { return nil }
                return Version(stamp: fields[0], writer: fields[1], deleted: fields[2] != 0)
            }
        }

        /// What one node holds: its rows, its row clocks, its conflict records.
        struct NodeState: Equatable {
            var rows: String
            var clocks: String
            var conflicts: String
        }

        static func state(_ cluster: TestCluster, _ node: Int, rows: String, tables: [(name: String, keys: [String])]) throws -> NodeState {
            let clocks = tables.map { table in
                let keys = table.keys.map { "quote(\($0))" }.joined(separator: ", ")
                return
                    "SELECT '\(table.name)', \(keys), __harmonylite__hlc, __harmonylite__node, __harmonylite__deleted FROM \"__harmonylite__\(table.name)_change_log\" ORDER BY \(table.keys.joined(separator: ", "));"
            }.joined()
            return NodeState(rows: try cluster.sql(node, rows), clocks: try cluster.sql(node, clocks), conflicts: try cluster.sql(node, conflictsQuery))
        }

        /// Waits until every running node holds the expected rows and conflict records — computed by `expected`
        /// from the row clocks of the first running node — and identical row clocks. Records a failure that
        /// shows what each node holds otherwise, and prints that summary either way (the "before" of a fix).
        static func expectSettled(
            _ cluster: TestCluster, _ scenario: String, rows: String, tables: [(name: String, keys: [String])], timeout: Double = 40,
            sourceLocation: SourceLocation = #_sourceLocation, expected: (Clock) throws -> (rows: String, conflicts: String)
        ) throws {
            let running = [0, 1, 2]
            var states: [NodeState] = []
            var wanted: (rows: String, conflicts: String) = ("", "")
            let settled = try eventually(timeout: timeout, interval: 0.3) {
                states = try running.map { try state(cluster, $0, rows: rows, tables: tables) }
                wanted = try expected(Clock(cluster: cluster, node: running[0]))
                return states.allSatisfy { $0.rows == wanted.rows && $0.conflicts == wanted.conflicts && $0.clocks == states[0].clocks }
            }
            let summary = running.indices.map { position in
                let state = states[position]
                return "node \(running[position] + 1): rows {\(state.rows.split(separator: "\n").joined(separator: ", "))} "
                    + "conflicts {\(state.conflicts.split(separator: "\n").joined(separator: ", "))} "
                    + "clocks {\(state.clocks.split(separator: "\n").joined(separator: ", "))}"
            }.joined(separator: "\n")
            print("scenario \(scenario): \(settled ? "settled as expected" : "NOT settled after \(Int(timeout)) s")\n\(summary)")
            #expect(
                settled,
                """
                scenario \(scenario): expected rows {\(wanted.rows.split(separator: "\n").joined(separator: ", "))}, \
                conflicts {\(wanted.conflicts.split(separator: "\n").joined(separator: ", "))} and identical clocks on every node; they hold:
                \(summary)
                \(cluster.problems(limit: 15))
                """, sourceLocation: sourceLocation)
        }
    }
}
