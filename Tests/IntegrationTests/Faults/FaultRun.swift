import Foundation
import TestSupport

/// One run of the fault suite: three nodes on the embedded default, each in a network namespace of its own
/// with its database on a small filesystem of its own, the application writing on every node while the
/// plan's faults are injected; then every node must converge to the same rows, hold every committed write
/// and nothing the application saw fail.
final class FaultRun {
    struct Outcome {
        var faults: [String: Int] = [:]
        var injected = 0
        var skipped = 0
        var rowsWritten = 0
        var rowsLost = 0
        var rowsDuplicated = 0
        /// Seconds from the last write and the last heal until every node agreed; nil if they never did.
        var converged: Double?
        /// What went wrong, with evidence (each one fails the test).
        var failures: [String] = []
        /// What the faults did (restarts, restores), for the report.
        var events: [String] = []

        var faultSummary: String { faults.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ") }

        static let tableHeader = "| seed | faults | injected | rows written | rows lost | rows duplicated | time to converge |\n|---|---|---|---|---|---|---|"

        func tableRow(seed: UInt64) -> String {
            "| \(seed) | \(faultSummary) | \(injected)\(skipped > 0 ? " (\(skipped) skipped)" : "") | \(rowsWritten) | \(rowsLost) | \(rowsDuplicated) | "
                + (converged.map { "\($0.formatted1) s" } ?? "never") + " |"
        }
    }

    let workload: Workload
    let plan: FaultPlan
    let network: FaultNetwork
    let disks: [FaultDisk]
    let cluster: TestCluster
    let application = FaultApplication()
    private var outcome = Outcome()
    private var paused: [Int32: Int32] = [:]
    private let start = Date()

    init(workload: Workload, plan: FaultPlan, nodeTOML: String = "", diskMegabytes: Int = 96) throws {
        self.workload = workload
        self.plan = plan
        network = try FaultNetwork(nodes: 3)
        disks = try (0..<3).map { _ in try FaultDisk(megabytes: diskMegabytes) }
        let placements = (0..<3).map { [network, disks] in
            NodePlacement(host: network.host($0), launcher: network.launcher($0), databaseDirectory: disks[$0].path)
        }
        // A replaced worker comes back quickly, and a node is not given up for the crash loops 100 kill rounds make.
        let workers = FaultTarget.allCases.compactMap(\.childRole).map { "[workers.\($0)]\nrestart_backoff_initial = 100\nrestart_intensity = 50\n" }.joined()
        cluster = try TestCluster(
            schema: workload.schema + "\n" + FaultApplication.journalSchema,
            extraTOML: Array(repeating: nodeTOML + workers, count: 3), placements: placements,
            natsTOML: "allow_plaintext_routes = true\n")  // namespaces no one else sees
    }

    /// Stops every node, then removes the filesystems and namespaces (in that order: nothing may still use them).
    func tearDown() {
        for index in 0..<3 { cluster.stop(index) }
        for (pid, _) in paused where processExists(pid) { kill(pid, SIGCONT) }
        disks.forEach { $0.unmount() }
        network.remove()
    }

    private var now: Double { Date().timeIntervalSince(start) }

    private func note(_ text: String) {
        let line = "[\(now.formatted1) s] \(text)"
        outcome.events.append(line)
        // Unbuffered, so a long run shows where it is.
        FileHandle.standardError.write(Data("fault suite: \(line)\n".utf8))
    }

    /// Runs the workload over the plan while injecting it; then checks and measures.
    func run() -> Outcome {
        let paths = (0..<3).map(cluster.path)
        let writersDone = DispatchSemaphore(value: 0)
        let transactions = workload.transactions
        let seconds = plan.end + 2
        Thread { [application] in
            application.run(transactions, paths: paths, over: seconds)
            writersDone.signal()
        }.start()
        var schedule = FaultSchedule(plan)
        while !schedule.isFinished {
            for action in schedule.due(now: now) { perform(action) }
            schedule.done(now: now)
            restartExitedNodes()
            Thread.sleep(forTimeInterval: 0.05)
        }
        while writersDone.wait(timeout: .now() + 0.5) == .timedOut { restartExitedNodes() }
        note("faults over, every transaction committed or given up; waiting for the nodes to agree")
        check()
        return outcome
    }

    // MARK: faults

    private func perform(_ action: FaultSchedule.Action) {
        switch action {
        case .inject(let fault):
            guard cluster.nodes[fault.node] != nil else {
                outcome.skipped += 1
                note("skipped \(fault.kind) on node \(fault.node + 1): the node is not running")
                return
            }
            outcome.injected += 1
            outcome.faults[fault.kind.family, default: 0] += 1
            note("inject \(fault.kind) on node \(fault.node + 1)")
            do { try inject(fault) } catch { fail("\(fault): \(String(describing: error).prefix(600))") }
        case .heal(let fault):
            note("heal \(fault.kind) on node \(fault.node + 1)")
            do { try heal(fault) } catch { fail("healing \(fault): \(String(describing: error).prefix(600))") }
        }
    }

    private func inject(_ fault: Fault) throws {
        let node = fault.node
        switch fault.kind {
        case .kill(.supervisor):
            let supervisor = cluster.node(node)
            let children = supervisor.children()
            kill(supervisor.pid, SIGKILL)
            guard supervisor.waitForExit(timeout: 10) != nil else { throw TestFailure("the killed supervisor did not exit") }
            guard eventually(timeout: 15, { children.values.allSatisfy { !processExists($0) } }) else {
                throw TestFailure("children outlived their killed supervisor: \(children)")
            }
            try restart(node, why: "supervisor killed; started again as systemd would")
        case .kill(let target), .pause(let target):
            guard let role = target.childRole, let pid = cluster.node(node).children()[role] else {
                outcome.skipped += 1
                note("no \(target.rawValue) running on node \(node + 1) (being replaced)")
                return
            }
            if case .kill = fault.kind {
                kill(pid, SIGKILL)
            } else {
                kill(pid, SIGSTOP)
                paused[pid] = cluster.node(node).pid
            }
        case .partition:
            try network.partition(node)
        case .diskFull:
            let taken = disks[node].fill()
            note("filled node \(node + 1)'s filesystem: \(taken / 1024) KiB taken, \(disks[node].available) bytes left")
        case .restoreWithoutSeqMap:
            try saveSnapshot(from: (node + 1) % 3)
            archiveLog(node)
            cluster.stop(node)
            try? FileManager.default.removeItem(atPath: seqMapPath(node))
            try restart(node, why: "seq map deleted (recovery procedure)", archive: false)
            try expectRestore(node)
        case .gapRestore:
            archiveLog(node)
            cluster.stop(node)
        }
    }

    private func heal(_ fault: Fault) throws {
        let node = fault.node
        switch fault.kind {
        case .pause:
            for (pid, supervisor) in paused {
                // Only a process still run by that supervisor: a PID the supervisor replaced may belong to anyone now.
                if parentPID(of: pid) == supervisor { kill(pid, SIGCONT) } else { note("paused process \(pid) was replaced meanwhile") }
            }
            paused = [:]
        case .partition:
            try network.heal(node)
        case .diskFull:
            disks[node].free()
        case .gapRestore:
            try saveSnapshot(from: (node + 1) % 3)
            try restart(node, why: "back after a gap", archive: false)
            try expectRestore(node)
        case .kill, .restoreWithoutSeqMap:
            break
        }
    }

    private func seqMapPath(_ node: Int) -> String { cluster.directory.path + "/node\(node + 1)-seq-map.cbor" }

    /// `-save-snapshot` through node `source`'s running embedded server, from its namespace.
    private func saveSnapshot(from source: Int) throws {
        guard let node = cluster.nodes[source] else { throw TestFailure("node \(source + 1) is not running to save a snapshot") }
        let launcher = network.launcher(source)
        let result = try runCommand(launcher[0], Array(launcher.dropFirst()) + [Binaries.supervisor, "-config", node.configPath, "-save-snapshot"])
        guard result.status == 0 else { throw TestFailure("-save-snapshot on node \(source + 1): \(result.output)") }
        note("node \(source + 1): \(result.output.split(separator: "\n").last ?? "")")
    }

    private func expectRestore(_ node: Int) throws {
        let log = cluster.node(node).log
        if log.contains("restored the snapshot") {
            note("node \(node + 1) restored the snapshot" + (log.firstMatch(of: /kept \d+ unpublished local change\(s\)/).map { ", \($0.0)" } ?? ""))
        } else {
            note("node \(node + 1) did not restore a snapshot")
        }
    }

    /// Starts a node again (after its log so far was kept) and waits until it is ready.
    private func restart(_ node: Int, why: String, archive: Bool = true) throws {
        if archive { archiveLog(node) }
        cluster.stop(node)
        try cluster.start(node)
        try cluster.node(node).waitUntilReady(timeout: 120)
        note("node \(node + 1) ready again (\(why))")
    }

    /// A node whose supervisor exited on its own (a crash loop past its intensity, a gap while running) is
    /// started again, as systemd's `Restart=on-failure` would.
    private func restartExitedNodes() {
        for node in 0..<3 {
            guard let running = cluster.nodes[node], !running.isRunning else { continue }
            let status = running.waitForExit(timeout: 0).map(String.init) ?? "?"
            let reason = running.log.split(separator: "\n").suffix(3).joined(separator: " / ")
            note("node \(node + 1) exited with status \(status) on its own: \(reason.prefix(400))")
            do { try restart(node, why: "exited on its own") } catch { fail("restarting node \(node + 1): \(String(describing: error).prefix(600))") }
        }
    }

    private var archivedLogs: [Int: String] = [:]

    private func archiveLog(_ node: Int) {
        guard let log = cluster.nodes[node]?.log else { return }
        archivedLogs[node, default: ""] += log + "\n----- (node restarted) -----\n"
    }

    /// Everything node `index` logged during the run, across restarts.
    func log(_ index: Int) -> String { archivedLogs[index, default: ""] + (cluster.nodes[index]?.log ?? "") }

    private func fail(_ text: String) {
        outcome.failures.append(text)
        note("FAILURE: \(text)")
    }

    // MARK: checks

    private func check() {
        outcome.rowsWritten = application.statementsWritten
        for given in application.givenUp { fail("the application gave up a transaction: \(given)") }
        for node in 0..<3 where cluster.nodes[node] == nil {
            do { try restart(node, why: "for the checks") } catch { fail("starting node \(node + 1): \(String(describing: error).prefix(600))") }
        }
        let everything = workload.dumpQuery + "\n" + FaultApplication.journalQuery
        let before = Date()
        let agreed = (try? cluster.agree(everything, timeout: 180)) ?? nil
        outcome.converged = agreed == nil ? nil : Date().timeIntervalSince(before)
        if agreed == nil {
            let difference = (try? ProcessTests.WorkloadChecker.differences(everything, cluster)) ?? "?"
            fail("nodes still differ after 180 s:\n\(difference.prefix(3000))")
        }
        do {
            try checkJournal()
            try checkOwnedRows()
            for node in 0..<3 {
                let untraced = try cluster.sql(node, workload.untracedLossesQuery)
                if !untraced.isEmpty {
                    outcome.rowsLost += untraced.split(separator: "\n").count
                    fail("node \(node + 1): rows gone without a conflict record:\n\(untraced.prefix(1000))")
                }
                let parked = try cluster.sql(node, "SELECT stream, sequence, reason FROM __harmonylite___parked;")
                if !parked.isEmpty { fail("node \(node + 1) still has parked messages:\n\(parked.prefix(1000))") }
            }
        } catch {
            fail("checking: \(error)")
        }
    }

    /// Every committed attempt's journal row on every node; no failed attempt's anywhere.
    private func checkJournal() throws {
        let committed = Set(application.committed.map(\.line))
        let failed = Set(application.failed.map(\.line))
        var missing: Set<String> = []
        var phantom: Set<String> = []
        for node in 0..<3 {
            let present = Set(try cluster.sql(node, FaultApplication.journalQuery).split(separator: "\n").map(String.init))
            let lost = committed.subtracting(present)
            let extra = present.intersection(failed)
            if !lost.isEmpty { fail("node \(node + 1) lacks \(lost.count) committed transactions (node|tx|attempt): \(lost.sorted().prefix(10))") }
            if !extra.isEmpty { fail("node \(node + 1) holds \(extra.count) transactions the application saw fail: \(extra.sorted().prefix(10))") }
            missing.formUnion(lost)
            phantom.formUnion(extra)
        }
        outcome.rowsLost += missing.count
        outcome.rowsDuplicated += phantom.count
    }

    /// Keys only one node wrote hold that node's last committed write everywhere: a wrong value or a missing
    /// row is a lost write, a row that its owner deleted last and that is back is a duplicate.
    private func checkOwnedRows() throws {
        var wrong: [String] = []
        for (query, expected) in workload.ownedExpectations {
            var lost = false
            var back = false
            for node in 0..<3 {
                let answer = try cluster.sql(node, query)
                guard answer != expected else { continue }
                if expected.isEmpty { back = true } else { lost = true }
                wrong.append(
                    "node \(node + 1): \(query.prefix(160)) gave \(answer.prefix(120).debugDescription), expected \(expected.prefix(120).debugDescription)")
            }
            if lost { outcome.rowsLost += 1 }
            if back { outcome.rowsDuplicated += 1 }
        }
        if !wrong.isEmpty { fail("\(wrong.count) owned rows wrong:\n\(wrong.prefix(10).joined(separator: "\n"))") }
    }
}
