import Foundation
import Synchronization
import TestSupport

/// The application of a fault run: every node's workload transactions, paced over the run, each one
/// retried until it commits (a full disk or a lock held by a paused worker makes it fail meanwhile), as an
/// application does. Every attempt also writes its own row to `journal`, so afterwards every committed
/// attempt must be present on every node (else a write was lost) and no failed attempt may be (else a
/// write the application saw fail was applied anyway).
final class FaultApplication: Sendable {
    static let journalSchema = "CREATE TABLE journal (node INTEGER NOT NULL, tx INTEGER NOT NULL, attempt INTEGER NOT NULL, PRIMARY KEY (node, tx, attempt));"
    static let journalQuery = "SELECT node, tx, attempt FROM journal ORDER BY node, tx, attempt;"

    struct Attempt: Hashable, Sendable {
        var node: Int
        var tx: Int
        var attempt: Int
        var line: String { "\(node)|\(tx)|\(attempt)" }
    }

    private struct State {
        var committed: [Attempt] = []
        var failed: [Attempt] = []
        var statements = 0
        var givenUp: [String] = []
        var lastErrors: [String] = []
    }

    private let state = Mutex(State())

    var committed: [Attempt] { state.withLock { $0.committed } }
    var failed: [Attempt] { state.withLock { $0.failed } }
    /// INSERT, UPDATE and DELETE statements in committed transactions (the journal's own included).
    var statementsWritten: Int { state.withLock { $0.statements } }
    /// Transactions that never committed within the retry limit: the test fails on them.
    var givenUp: [String] { state.withLock { $0.givenUp } }
    var errorSamples: [String] { state.withLock { Array($0.lastErrors.suffix(5)) } }

    /// Runs every node's transactions on its own thread, spread evenly over `seconds`; returns when all committed
    /// (or were given up after `retryLimit` seconds of failing).
    func run(_ transactions: [[String]], paths: [String], over seconds: Double, retryLimit: Double = 240) {
        let group = DispatchGroup()
        for (node, list) in transactions.enumerated() {
            group.enter()
            Thread { [self] in
                defer { group.leave() }
                let start = Date()
                let pace = list.isEmpty ? 0 : seconds / Double(list.count)
                for (index, transaction) in list.enumerated() {
                    let wait = Double(index) * pace - Date().timeIntervalSince(start)
                    if wait > 0 { Thread.sleep(forTimeInterval: wait) }
                    commit(transaction, node: node, index: index, path: paths[node], retryLimit: retryLimit)
                }
            }.start()
        }
        group.wait()
    }

    private func commit(_ transaction: String, node: Int, index: Int, path: String, retryLimit: Double) {
        let started = Date()
        var attempt = 0
        while true {
            let identity = Attempt(node: node, tx: index, attempt: attempt)
            let text = Self.withJournal(transaction, identity)
            let result = try? runCommand("/usr/bin/sqlite3", ["-bail", "-cmd", ".timeout 10000", path, "PRAGMA trusted_schema=OFF;" + text])
            if result?.status == 0 {
                let statements = text.split(separator: "\n").filter { $0.hasPrefix("INSERT") || $0.hasPrefix("UPDATE") || $0.hasPrefix("DELETE") }.count
                state.withLock {
                    $0.committed.append(identity)
                    $0.statements += statements
                }
                return
            }
            let message = "node \(node + 1) tx \(index) attempt \(attempt): \(result?.output.prefix(200) ?? "sqlite3 did not run")"
            state.withLock {
                $0.failed.append(identity)
                $0.lastErrors.append(message)
            }
            if Date().timeIntervalSince(started) > retryLimit {
                state.withLock { $0.givenUp.append(message) }
                return
            }
            attempt += 1
            Thread.sleep(forTimeInterval: 0.2)
        }
    }

    /// The transaction with its journal row written just before COMMIT.
    static func withJournal(_ transaction: String, _ attempt: Attempt) -> String {
        let journal = "INSERT INTO journal VALUES (\(attempt.node), \(attempt.tx), \(attempt.attempt));\n"
        guard transaction.hasSuffix("COMMIT;") else { return transaction + "\n" + journal }
        return String(transaction.dropLast("COMMIT;".count)) + journal + "COMMIT;"
    }
}
