import Foundation
import Synchronization
import TestSupport
import Testing

@testable import ChangeLog
@testable import SQLiteKit
@testable import Snapshots

/// An application that keeps writing while the node restores a snapshot.
extension SnapshotTests {
    /// Inserts rows 100, 101, … one transaction each (about 2,000 a second) on a connection of its own until stopped, and
    /// remembers which commits succeeded.
    final class ApplicationWriter: Sendable {
        private let path: String
        private let state = Mutex<(stop: Bool, committed: [Int64], error: String?)>((false, [], nil))
        private let done = DispatchSemaphore(value: 0)

        init(path: String) { self.path = path }

        func start() {
            Thread.detachNewThread { [self] in
                defer { done.signal() }
                do {
                    let database = try SQLiteDatabase(existingPath: path)
                    try database.execute("PRAGMA busy_timeout=20000")
                    let insert = try database.prepare("INSERT INTO books VALUES (?, 'written during the restore', NULL)")
                    var id: Int64 = 100
                    while !state.withLock({ $0.stop }) {
                        try insert.run([.integer(id)])
                        state.withLock { $0.committed.append(id) }
                        id += 1
                        // A busy application, not a tight loop that starves every other writer (SQLite's busy
                        // handler polls: a connection that commits back to back takes the lock every time).
                        usleep(300)
                    }
                } catch {
                    state.withLock { $0.error = "\(error)" }
                }
            }
        }

        var committedCount: Int { state.withLock { $0.committed.count } }

        func stop() -> (committed: [Int64], error: String?) {
            state.withLock { $0.stop = true }
            done.wait()
            return state.withLock { ($0.committed, $0.error) }
        }
    }

    /// Every transaction the application committed while restores ran is in the restored database. Before,
    /// a commit between the restore's read of the unpublished changes and the copy was lost (the fault
    /// suite's gap restore under write load lost one): the restore now reads them under the write lock it
    /// holds until the content is replaced.
    @Test func everyCommitOfAnApplicationWritingDuringRestoresIsKept() throws {
        let source = try node("a.db", "INSERT INTO books VALUES (1, 'Dune', NULL);", id: 1)
        let file = directory.path + "/snapshot.db"
        let metadata = try SnapshotMaker.make(from: source, into: file, nodeID: 1)
        let target = try node("b.db", "", id: 2)
        let writer = ApplicationWriter(path: target)
        writer.start()
        for _ in 0..<30 {
            let before = writer.committedCount
            // A restore prepares the downloaded file in place: each gets a fresh copy, as each download is.
            let copy = directory.path + "/download.db"
            try? FileManager.default.removeItem(atPath: copy)
            try FileManager.default.copyItem(atPath: file, toPath: copy)
            _ = try SnapshotRestorer.restore(copy, metadata: metadata, into: target, nodeID: 2)
            while writer.committedCount < before + 5 { Thread.sleep(forTimeInterval: 0.001) }
        }
        let (committed, error) = writer.stop()
        #expect(error == nil)
        let present = Set(try app(target, "SELECT id FROM books WHERE id >= 100;").split(separator: "\n").compactMap { Int64($0) })
        let lost = committed.filter { !present.contains($0) }
        #expect(lost.isEmpty, "\(lost.count) of \(committed.count) commits lost: \(lost.prefix(10))")
        #expect(try app(target, "SELECT title FROM books WHERE id = 1; PRAGMA integrity_check;") == "Dune\nok\n")
    }

    /// While the content is being replaced no writer commits, and readers of the WAL database go on.
    @Test func replacingTheContentHoldsTheWriteLockAndLetsReadersRead() throws {
        let source = try node("a.db", "INSERT INTO books VALUES (1, 'Dune', NULL);", id: 1)
        let target = try node("b.db", "INSERT INTO books VALUES (2, 'Emma', NULL);", id: 2)
        let live = try SQLiteDatabase(existingPath: target)
        let other = try SQLiteDatabase(existingPath: target)
        try other.execute("PRAGMA busy_timeout=0")
        var sawWhileLocked: [String] = []
        try live.replaceContent(with: try SQLiteDatabase(existingPath: source)) {
            sawWhileLocked = try other.rows("SELECT title FROM books").compactMap { $0.first ?? nil }
            #expect(throws: SQLiteError.self) { try other.execute("INSERT INTO books VALUES (3, 'refused', NULL)") }
        }
        #expect(sawWhileLocked == ["Emma"])
        #expect(try other.rows("SELECT title FROM books").compactMap { $0.first ?? nil } == ["Dune"])
        // What the closure throws leaves the content as it was, and unlocked.
        struct Refused: Error {}
        #expect(throws: Refused.self) { try live.replaceContent(with: try SQLiteDatabase(existingPath: target)) { throw Refused() } }
        try other.execute("INSERT INTO books VALUES (4, 'after', NULL)")
    }
}
