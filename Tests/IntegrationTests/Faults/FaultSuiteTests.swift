import Foundation
import TestSupport
import Testing

extension ProcessTests {
    /// The fault suite: the randomized workload on three nodes (each in a network namespace of its own, its
    /// database on a small tmpfs of its own) while faults are injected one at a time; then every node must
    /// hold the same rows, every committed write (or its conflict record), and nothing the application saw
    /// fail. Prints a table: faults injected, rows written, lost, duplicated, time to converge.
    ///
    /// Short form (CI): one kill round (every process type once, random order and nodes), two pauses, a
    /// partition, a full disk (a wedged nats-server is restarted after `[workers.nats] heartbeat_timeout`, 20 s). Long form: `benchmarks/faults.sh` (100 kill rounds …). Environment:
    /// `HL_FAULT_SEED=<seed>[,…]` replays, `HL_FAULT_RUNS` (1), `HL_FAULT_KILL_ROUNDS` (1), `HL_FAULT_PAUSES` (2),
    /// `HL_FAULT_PARTITIONS` (1), `HL_FAULT_DISK_FULLS` (1), `HL_FAULT_RESTORES` (1), `HL_FAULT_GAP_RESTORES` (1),
    /// `HL_FAULT_TX_PER_SECOND` (2 per node), `HL_FAULT_KNOWN_FAILING=1` runs the fault kinds known to fail;
    /// `HL_WORKLOAD_FEATURES` as for the workload checker (migrations are always left out: the application
    /// retries a failed transaction whole, and a migration runs outside it).
    @Suite(.serialized) struct FaultSuite {
        static var environment: [String: String] { ProcessInfo.processInfo.environment }

        static func number(_ name: String, _ fallback: Int) -> Int { Int(environment[name] ?? "") ?? fallback }

        static var seeds: [UInt64] {
            if let list = environment["HL_FAULT_SEED"] {
                return list.split(separator: ",").compactMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
            }
            return (0..<max(1, number("HL_FAULT_RUNS", 1))).map { _ in UInt64.random(in: 1...UInt64(UInt32.max)) }
        }

        /// Fault kinds that lose writes today because of work under way elsewhere, with the cause. They are left
        /// out of the short form (the message names the cause) and run when `HL_FAULT_KNOWN_FAILING=1`.
        /// None today. gapRestore was here until snapshots carried row clocks and the replay settled UNIQUE swaps
        /// (issue 11); diskFull (seed 2340062918: the JetStream meta group flapped for 4+ min, 116 transactions never
        /// reached the other nodes) until the supervisor restarted an embedded nats-server that stops answering its
        /// liveness probe: nats-server 2.9.10 deadlocks a stream when a store write fails on a full disk.
        static let knownFailing: [String: String] = [:]

        static var runKnownFailing: Bool { environment["HL_FAULT_KNOWN_FAILING"] == "1" }

        static var features: Workload.Features { WorkloadChecker.features.subtracting(.migrations).subtracting(.schemaChanges) }

        /// kill -9 of every process type, SIGSTOP/SIGCONT of workers and nats-server, a partition, a full disk.
        @Test(arguments: seeds) func processNetworkAndDiskFaultsLoseNothing(seed: UInt64) throws {
            var settings = FaultPlan.Settings()
            settings.killRounds = Self.number("HL_FAULT_KILL_ROUNDS", 1)
            settings.pauses = Self.number("HL_FAULT_PAUSES", 2)
            settings.partitions = Self.number("HL_FAULT_PARTITIONS", 1)
            let diskFullKnownFailing = Self.knownFailing["diskFull"].map { _ in !Self.runKnownFailing } ?? false
            settings.diskFulls = Self.number("HL_FAULT_DISK_FULLS", diskFullKnownFailing ? 0 : 1)
            if diskFullKnownFailing && Self.environment["HL_FAULT_DISK_FULLS"] == nil {
                print("fault suite: diskFull left out, known failing (run with HL_FAULT_KNOWN_FAILING=1): \(Self.knownFailing["diskFull"]!)")
            }
            try run(seed: seed, settings: settings, name: "processes, network, disk")
        }

        /// The production guide's recovery procedure while every node writes: `-save-snapshot` on another
        /// node, then a node's seq map deleted and the node restarted.
        @Test(arguments: seeds) func recoveryProcedureUnderWriteLoadLosesNothing(seed: UInt64) throws {
            try run(seed: seed, settings: Self.restoreSettings(restores: Self.number("HL_FAULT_RESTORES", 1), gapRestores: 0), name: "recovery procedure")
        }

        /// A node back after a gap longer than `max_entries` while every node writes: it restores the snapshot.
        @Test(
            .enabled(
                if: runKnownFailing || knownFailing["gapRestore"] == nil,
                Comment(rawValue: "known failing, run with HL_FAULT_KNOWN_FAILING=1: " + (knownFailing["gapRestore"] ?? ""))),
            arguments: seeds)
        func gapRestoreUnderWriteLoadLosesNothing(seed: UInt64) throws {
            try run(
                seed: seed, settings: Self.restoreSettings(restores: 0, gapRestores: Self.number("HL_FAULT_GAP_RESTORES", 1)), name: "gap restore",
                // R3: with the node down, the others keep a quorum of every stream and of the snapshot store (an R1
                // stream on the stopped node's server is offline: nothing to write past, no snapshot to save).
                nodeTOML: "[replication_log]\nmax_entries = 16\nreplicas = 3\n[snapshot.nats]\nreplicas = 3\n")
        }

        static func restoreSettings(restores: Int, gapRestores: Int) -> FaultPlan.Settings {
            var settings = FaultPlan.Settings()
            settings.killRounds = 0
            settings.pauses = 0
            settings.partitions = 0
            settings.diskFulls = 0
            settings.restores = restores
            settings.gapRestores = gapRestores
            return settings
        }

        private func run(seed: UInt64, settings: FaultPlan.Settings, name: String, nodeTOML: String = "") throws {
            let plan = FaultPlan(seed: seed, settings: settings)
            let rate = Double(Self.number("HL_FAULT_TX_PER_SECOND", 2))
            let transactions = max(20, Int((plan.end + 2) * rate))
            let workload = Workload(seed: seed, features: Self.features, nodes: 3, transactionsPerNode: transactions)
            let replay = "seed \(seed) (replay: HL_FAULT_SEED=\(seed)), \(transactions) transactions per node, features \(workload.features)"
            print("fault suite (\(name)), \(replay), plan:\n" + plan.faults.map { "  \($0)" }.joined(separator: "\n"))
            let faultRun = try FaultRun(workload: workload, plan: plan, nodeTOML: nodeTOML)
            defer { faultRun.tearDown() }
            let outcome = faultRun.run()
            print("fault suite (\(name)):\n\(FaultRun.Outcome.tableHeader)\n\(outcome.tableRow(seed: seed))")
            if !outcome.failures.isEmpty || Self.environment["HL_FAULT_KEEP_LOGS"] != nil {
                // Kept for the post-mortem: the run's directory goes with the test.
                for node in 0..<3 { try? faultRun.log(node).write(toFile: "/tmp/hlf-logs-\(seed)-node\(node + 1).log", atomically: true, encoding: .utf8) }
                print("fault suite: logs kept in /tmp/hlf-logs-\(seed)-node{1,2,3}.log")
            }
            let logs = (0..<3).map {
                "node \($0 + 1):\n"
                    + faultRun.log($0).split(separator: "\n").filter { $0.contains("ERR") || $0.contains("WRN") || $0.contains("error") }.suffix(25).joined(
                        separator: "\n")
            }
            #expect(
                outcome.failures.isEmpty,
                "\(replay):\n\(outcome.failures.joined(separator: "\n"))\nevents:\n\(outcome.events.joined(separator: "\n"))\n\(logs.joined(separator: "\n"))")
            #expect(outcome.rowsLost == 0 && outcome.rowsDuplicated == 0, "\(replay): \(outcome.rowsLost) lost, \(outcome.rowsDuplicated) duplicated")
            #expect(outcome.injected > 0, "\(replay): no fault was injected")
        }
    }
}
