import ChangeLog
import Foundation
import NATSClient
import SQLiteKit

/// The two ceilings replication cannot beat on this machine: how fast SQLite commits rows with our capture
/// triggers installed, and how fast JetStream stores asynchronous publishes.
enum PhysicalLimits {
    /// Rows per second inserted in transactions of `rowsPerTransaction`, with or without capture triggers.
    static func sqliteRowsPerSecond(directory: String, triggers: Bool, rowsPerTransaction: Int, seconds: Double) throws -> Double {
        let path = directory + "/limit-\(triggers)-\(rowsPerTransaction).db"
        try sqliteShell(path, "PRAGMA journal_mode=WAL; CREATE TABLE bench(id INTEGER PRIMARY KEY, t_ns INTEGER, payload TEXT);")
        if triggers {
            _ = try ChangeLogInstaller.open(path, node: 1)
        }
        let database = try SQLiteDatabase(existingPath: path)
        try database.execute("PRAGMA synchronous=NORMAL")
        let insert = try database.prepare("INSERT INTO bench(id, t_ns, payload) VALUES (?, ?, ?)")
        let payload = SQLiteValue.text(String(repeating: "x", count: 100))
        var rows = 0
        let start = now()
        while now() - start < seconds {
            if rowsPerTransaction > 1 { try database.execute("BEGIN") }
            for _ in 0..<rowsPerTransaction {
                rows += 1
                try insert.run([.integer(Int64(rows)), .integer(wallNanoseconds()), payload])
            }
            if rowsPerTransaction > 1 { try database.execute("COMMIT") }
        }
        return Double(rows) / (now() - start)
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
