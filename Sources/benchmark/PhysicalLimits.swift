import ChangeLog
import Foundation
import NATSClient
import SQLiteKit

/// The two ceilings replication cannot beat on this machine: how fast SQLite commits rows with our capture
/// triggers installed, and how fast JetStream stores asynchronous publishes.
enum PhysicalLimits {
    /// The application's insert into a database of its own, with or without our capture triggers
    /// (installed by the real `ChangeLogInstaller`), WAL and `synchronous=NORMAL` as applications run it.
    final class Writer {
        let database: SQLiteDatabase
        let insert: SQLiteStatement
        let rowsPerTransaction: Int
        private var next: Int64 = 0
        private let payload = SQLiteValue.text(String(repeating: "x", count: 100))

        init(directory: String, triggers: Bool, rowsPerTransaction: Int) throws {
            let path = directory + "/limit-\(triggers)-\(rowsPerTransaction).db"
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            // An empty file is an empty database (no sqlite3 child: valgrind cannot spawn one).
            guard FileManager.default.createFile(atPath: path, contents: nil) else { throw BenchmarkError("cannot create \(path)") }
            try SQLiteDatabase(existingPath: path).execute("PRAGMA journal_mode=WAL; CREATE TABLE bench(id INTEGER PRIMARY KEY, t_ns INTEGER, payload TEXT);")
            if triggers { _ = try ChangeLogInstaller.open(path, node: 1) }
            database = try SQLiteDatabase(existingPath: path)
            try database.execute("PRAGMA synchronous=NORMAL")
            insert = try database.prepare("INSERT INTO bench(id, t_ns, payload) VALUES (?, ?, ?)")
            self.rowsPerTransaction = rowsPerTransaction
        }

        /// Writes one transaction; returns its rows.
        func transaction() throws -> Int {
            if rowsPerTransaction > 1 { try database.execute("BEGIN") }
            for _ in 0..<rowsPerTransaction {
                next += 1
                try insert.run([.integer(next), .integer(wallNanoseconds()), payload])
            }
            if rowsPerTransaction > 1 { try database.execute("COMMIT") }
            return rowsPerTransaction
        }
    }

    /// Rows per second of each writer, measured in turns of 0.25 s for `seconds` in all, keeping each
    /// writer's best turn: on a shared machine, the other processes slow every writer alike only in the
    /// same instant, so turns compare like with like and the best turn is the least disturbed.
    static func sqliteRowsPerSecond(_ writers: [Writer], seconds: Double) throws -> [Double] {
        var best = Array(repeating: 0.0, count: writers.count)
        let turn = 0.25
        for _ in 0..<max(1, Int(seconds / turn / Double(writers.count))) {
            for (index, writer) in writers.enumerated() {
                var rows = 0
                let start = now()
                while now() - start < turn { rows += try writer.transaction() }
                best[index] = max(best[index], Double(rows) / (now() - start))
            }
        }
        return best
    }

    /// Messages per second stored by JetStream from asynchronous publishes of `size` bytes, on a
    /// nats-server of its own.
    static func jetStreamPublishesPerSecond(directory: String, count: Int, size: Int) throws -> Double {
        let server = try StandaloneNATS(storeDirectory: directory + "/js-limit")
        defer { server.stop() }
        var settings = ConnectionSettings(urls: [server.url], name: "benchmark")
        let acks = PublishAcks()
        settings.publishAcks = acks
        let connection = try server.connect(settings)
        _ = try connection.ensureStream(StreamSpecification(name: "limit", subject: "limit", replicas: 1, maxMessages: -1), updateExisting: false)
        let payload = [UInt8](repeating: 0x61, count: size)
        var stored = 0
        let start = now()
        for index in 0..<count {
            try connection.publishAsync(subject: "limit", payload: payload, messageID: "m\(index)")
            if index % 1024 == 0 { stored += acks.drain().count }
        }
        while stored < count {
            stored += acks.drain().count
            if now() - start > 60 { throw BenchmarkError("JetStream acknowledged only \(stored) of \(count)") }
            usleep(200)
        }
        return Double(count) / (now() - start)
    }
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
