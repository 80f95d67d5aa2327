import ChangeLog
import Foundation
import SQLiteKit
import Snapshots

/// `harmonylite-benchmark restore-merge [rows, default 200000]`: what keeping the live database's later row
/// versions costs a restore (`SnapshotRestorer`, `LiveVersionMerge`). A snapshot of `rows` rows (every row
/// with its row clock) is restored into: an empty live database (nothing to compare), a live database holding
/// the same versions (every clock compared, none kept), and ones where 10 % and all of the rows have a later
/// version (kept). The difference between the first two is the comparing pass; wall seconds, one run each.
enum RestoreMergeCost {
    static func run(_ arguments: [String]) throws {
        let rows = arguments.first.flatMap { Int($0) } ?? 200_000
        let directory = "/tmp/hl-restore-merge-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let source = directory + "/source.db"
        try populate(source, rows: rows, node: 1, laterEvery: nil)
        let snapshot = directory + "/snapshot.db"
        let metadata = try SnapshotMaker.make(from: source, into: snapshot, nodeID: 1)
        say("restore of a \(rows)-row snapshot (\(metadata.size >> 20) MiB) into a live database with:")
        for (label, laterEvery) in [
            ("no rows", Optional<Int>.none), ("the same \(rows) versions", 0), ("\(rows / 10) later versions", 10), ("\(rows) later versions", 1),
        ] {
            let target = directory + "/target.db"
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: target + suffix) }
            try populate(target, rows: laterEvery == nil ? 0 : rows, node: 2, laterEvery: laterEvery)
            // The restore prepares the downloaded file in place: each run gets a copy.
            let copy = directory + "/download.db"
            try? FileManager.default.removeItem(atPath: copy)
            try FileManager.default.copyItem(atPath: snapshot, toPath: copy)
            let started = Date()
            let outcome = try SnapshotRestorer.restore(copy, metadata: metadata, into: target, nodeID: 2)
            let seconds = Date().timeIntervalSince(started)
            say(
                "  \(label.padding(toLength: 26, withPad: " ", startingAt: 0)) \(String(format: "%6.2f", seconds)) s; "
                    + "\(outcome.comparedLiveVersions) live clocks compared, \(outcome.keptLiveVersions) kept")
        }
    }

    /// `rows` rows with their row clocks, written as if replicated long ago (no queue entries); with
    /// `laterEvery` k > 0, every k-th row has a later version (one second later, this node's).
    static func populate(_ path: String, rows: Int, node: UInt64, laterEvery: Int?) throws {
        try sqliteShell(path, "PRAGMA journal_mode=WAL; CREATE TABLE books(id INTEGER PRIMARY KEY, title TEXT, cover BLOB);")
        let (database, _) = try ChangeLogInstaller.open(path, node: node)
        try database.enterReplicaRole()
        let base = Int64(1_700_000_000_000) << 16
        let log = HarmonyLiteObjects.quoted(ChangeLogSchema.changeLog(of: "books"))
        guard rows > 0 else { return }
        try database.execute("BEGIN")
        try database.execute(
            """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(rows))
            INSERT INTO books(id, title, cover) SELECT i, 'title ' || i, randomblob(100) FROM n
            """)
        try database.execute("INSERT INTO \(log) SELECT id, \(base) + id, 1, 0 FROM books")
        if let every = laterEvery, every > 0 {
            try database.execute("UPDATE books SET title = 'later ' || id WHERE id % \(every) = 0")
            try database.execute(
                "UPDATE \(log) SET \(ChangeLogSchema.stampColumn) = \(ChangeLogSchema.stampColumn) + (1000 << 16), "
                    + "\(ChangeLogSchema.nodeColumn) = \(node) WHERE id % \(every) = 0")
        }
        try database.execute("COMMIT")
    }
}
