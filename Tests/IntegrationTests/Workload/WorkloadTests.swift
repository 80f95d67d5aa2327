import Foundation
import Synchronization
import TestSupport
import Testing

extension ProcessTests {
    /// The randomized workload checker: a seeded schema and concurrent transactions on three real nodes,
    /// while `ArrivalOrderChaos` pauses and resumes appliers and brokers of random nodes (so changes reach
    /// each node in another order and grouping); then every node must hold identical rows, identical row
    /// clocks and identical conflict records, and every key only one node wrote must hold that node's last
    /// write. A failure names the seed and the features; replay it with
    /// `HL_WORKLOAD_SEED=<seed> swift test --filter WorkloadChecker` (and `HL_WORKLOAD_FEATURES=<names>` to
    /// narrow the features down; `HL_WORKLOAD_CHAOS=0` leaves the workers alone). See docs/testing.md.
    ///
    /// Short form (CI): two random seeds, 40 transactions per node, every feature.
    /// Long form: `HL_WORKLOAD_RUNS=20 HL_WORKLOAD_TRANSACTIONS=300 swift test --filter WorkloadChecker`.
    /// `HL_WORKLOAD_KEEP_LOGS=<directory>` keeps every node's whole log there (`workload-<seed>-node<N>.log`).
    @Suite(.serialized) struct WorkloadChecker {
        static var environment: [String: String] { ProcessInfo.processInfo.environment }

        /// `HL_WORKLOAD_SEED=<seed>[,<seed>…]` replays those seeds; otherwise `HL_WORKLOAD_RUNS` (default 2)
        /// seeds that differ from run to run, so every CI run explores new workloads (printed on failure).
        static var seeds: [UInt64] {
            if let list = environment["HL_WORKLOAD_SEED"] {
                return list.split(separator: ",").compactMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
            }
            let runs = Int(environment["HL_WORKLOAD_RUNS"] ?? "") ?? 2
            return (0..<max(1, runs)).map { _ in UInt64.random(in: 1...UInt64(UInt32.max)) }
        }

        static var features: Workload.Features {
            guard let text = environment["HL_WORKLOAD_FEATURES"] else { return .supported }
            if text == "all" { return .all }
            let named: [String: Workload.Features] = [
                "compositeKeys": .compositeKeys, "withoutRowID": .withoutRowID, "awkwardValues": .awkwardValues,
                "multiTableTransactions": .multiTableTransactions, "deletes": .deletes, "keyChanges": .keyChanges,
                "applicationTriggers": .applicationTriggers, "uniqueSwaps": .uniqueSwaps,
                "foreignKeyCascades": .foreignKeyCascades, "caseInsensitiveKeys": .caseInsensitiveKeys,
                "migrations": .migrations, "uniqueClaims": .uniqueClaims,
            ]
            return text.split(separator: ",").reduce(into: Workload.Features()) { $0.formUnion(named[String($1)] ?? []) }
        }

        static var transactionsPerNode: Int { Int(environment["HL_WORKLOAD_TRANSACTIONS"] ?? "") ?? 40 }

        /// Whether workers are paused and resumed while the workload runs (`HL_WORKLOAD_CHAOS=0`: not).
        static var chaos: Bool { environment["HL_WORKLOAD_CHAOS"] != "0" }

        /// The chaos goes on at least this long, however fast the writes are done (`HL_WORKLOAD_CHAOS_SECONDS`).
        static var chaosSeconds: Double { Double(environment["HL_WORKLOAD_CHAOS_SECONDS"] ?? "") ?? 6 }

        @Test(arguments: seeds) func nodesConvergeOnARandomWorkload(seed: UInt64) throws {
            let workload = Workload(seed: seed, features: Self.features, nodes: 3, transactionsPerNode: Self.transactionsPerNode)
            let replay = "seed \(seed), features \(workload.features) (replay: HL_WORKLOAD_SEED=\(seed))"
            let started = Date()
            let cluster = try TestCluster(schema: workload.schema)
            let chaos = Self.chaos ? ArrivalOrderChaos(seed: seed, supervisors: (0..<3).map { cluster.node($0).pid }) : nil
            chaos?.start()
            let began = Date()
            let written = Result { try run(workload, on: cluster) }
            while chaos != nil && Date().timeIntervalSince(began) < Self.chaosSeconds { Thread.sleep(forTimeInterval: 0.1) }
            let schedule = chaos?.stop() ?? []
            try written.get()
            let wrote = Date()
            let paused = "\(chaos?.pauses ?? 0) pauses (chaos seed \(seed))"
            // Rows, row clocks and conflict records, all at once: each alone could agree by chance mid-way.
            let everything = workload.dumpQuery + "\nSELECT '--- clocks';\n" + workload.clockQuery + "\nSELECT '--- conflicts';\n" + Workload.conflictsQuery
            let agreed = try cluster.agree(everything, timeout: 60)
            print(String(format: "workload seed %llu timing: cluster up %.1f s, writes and chaos %.1f s, agreement %.1f s",
                         seed, began.timeIntervalSince(started), wrote.timeIntervalSince(began), Date().timeIntervalSince(wrote)))
            var difference = ""
            if agreed == nil {
                for (what, query) in [("rows", workload.dumpQuery), ("row clocks", workload.clockQuery), ("conflict records", Workload.conflictsQuery)] {
                    let lines = try Self.differences(query, cluster)
                    if !lines.isEmpty { difference += "\(what):\n\(lines)\n" }
                }
            }
            #expect(agreed != nil, "nodes differ after 60 s: \(replay), \(paused)\n\(difference)\nchaos:\n\(schedule.suffix(40).joined(separator: "\n"))\n\(cluster.logs().suffix(6000))")
            var wrong: [String] = []
            let expectations = workload.ownedExpectations
            for node in 0..<3 {
                let answers = try Self.answers(expectations.map(\.query), on: node, of: cluster)
                for ((query, expected), answer) in zip(expectations, answers) where answer != expected {
                    wrong.append("node \(node + 1): \(query.prefix(200)) gave \(answer.prefix(200).debugDescription), expected \(expected.prefix(200).debugDescription)")
                }
            }
            let recorded = try (0..<3).map { try cluster.sql($0, "SELECT count(*) FROM __harmonylite___conflicts;").trimmingCharacters(in: .whitespacesAndNewlines) }
            print("workload \(replay), \(paused): conflict records per node: \(recorded.joined(separator: ", "))")
            for node in 0..<3 {
                // Every row held aside now was logged when it was (a row placed again since leaves the table).
                let logged = cluster.node(node).log.components(separatedBy: "row held aside").count - 1
                #expect(logged >= Int(recorded[node]) ?? 0, "node \(node + 1): \(logged) rows logged as held aside, \(recorded[node]) held aside now (\(replay))")
            }
            for node in 0..<3 {
                // Every node has every table and column by now: nothing may still wait as a parked message.
                let parked = try cluster.sql(node, "SELECT stream, sequence, reason FROM __harmonylite___parked;")
                #expect(parked.isEmpty, "node \(node + 1) still has parked messages (\(replay)):\n\(parked.prefix(1000))")
                let untraced = try cluster.sql(node, workload.untracedLossesQuery)
                #expect(untraced.isEmpty, "node \(node + 1): rows gone without a conflict record (\(replay)):\n\(untraced.prefix(2000))")
            }
            #expect(wrong.count == 0, "\(wrong.count) owned rows wrong (\(replay)):\n\(wrong.prefix(10).joined(separator: "\n"))")
            if let directory = Self.environment["HL_WORKLOAD_KEEP_LOGS"] {
                // The whole logs of every node, for what the failure message's tail leaves out.
                for node in 0..<3 {
                    let kept = directory + "/workload-\(seed)-node\(node + 1).log"
                    try? cluster.node(node).log.write(toFile: kept, atomically: true, encoding: .utf8)
                    print("workload \(replay): node \(node + 1)'s log kept in \(kept)")
                }
            }
        }

        /// Every node runs its transactions at the same time, a few per sqlite3 call, as applications do, with
        /// a pause of up to 0.3 s (seeded) between calls, so that the writes span the chaos.
        private func run(_ workload: Workload, on cluster: TestCluster) throws {
            let errors = Mutex<[String]>([])
            let group = DispatchGroup()
            for (node, transactions) in workload.transactions.enumerated() {
                let path = cluster.path(node)
                group.enter()
                let seed = workload.seed &+ UInt64(node)
                Thread {
                    defer { group.leave() }
                    var pace = SplitMix64(seed: seed)
                    for start in stride(from: 0, to: transactions.count, by: 5) {
                        if start > 0 { Thread.sleep(forTimeInterval: Double.random(in: 0...0.3, using: &pace)) }
                        let chunk = transactions[start..<min(start + 5, transactions.count)].joined(separator: "\n")
                        let result = try? runCommand("/usr/bin/sqlite3", ["-bail", "-cmd", ".timeout 10000", path, "PRAGMA trusted_schema=OFF;" + chunk])
                        if result?.status != 0 { errors.withLock { $0.append("node \(node + 1): \(result?.output ?? "sqlite3 did not run")") } }
                    }
                }.start()
            }
            group.wait()
            let failed = errors.withLock { $0 }
            guard failed.isEmpty else { throw TestFailure("the application's transactions failed: \(failed.prefix(5))") }
        }

        /// The answers to `queries` on node `node`, each as `TestCluster.sql` would give it, from one sqlite3
        /// call (one call per query took most of a short run). A marker row goes before each answer; no
        /// answer line can equal one, as the workload's queries print `quote()`d values joined by `|`.
        static func answers(_ queries: [String], on node: Int, of cluster: TestCluster) throws -> [String] {
            guard !queries.isEmpty else { return [] }
            let script = queries.enumerated().map { "SELECT '@@\($0.offset)';\n\($0.element)" }.joined(separator: "\n")
            var answers = Array(repeating: "", count: queries.count)
            var current = -1
            for line in try cluster.sql(node, script).split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                if line.hasPrefix("@@"), let index = Int(line.dropFirst(2)), index == current + 1 {
                    current = index
                } else if current >= 0 {
                    answers[current] += line + "\n"
                }
            }
            guard current == queries.count - 1 else { throw TestFailure("node \(node + 1) answered \(current + 1) of \(queries.count) queries") }
            return answers
        }

        /// The first lines where node 1's dump (of `query`) differs from the others'.
        static func differences(_ query: String, _ cluster: TestCluster) throws -> String {
            let dumps = try (0..<3).map { try cluster.sql($0, query).split(separator: "\n") }
            var lines: [String] = []
            for node in 1..<3 {
                let only1 = Set(dumps[0]).subtracting(dumps[node])
                let onlyOther = Set(dumps[node]).subtracting(dumps[0])
                lines += only1.sorted().prefix(5).map { "only on node 1, not node \(node + 1): \($0)" }
                lines += onlyOther.sorted().prefix(5).map { "only on node \(node + 1), not node 1: \($0)" }
            }
            return lines.joined(separator: "\n")
        }
    }
}
