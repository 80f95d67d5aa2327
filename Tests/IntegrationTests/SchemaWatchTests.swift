import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    /// The capturer watches the schema at every commit, also while it cannot publish (NATS unreachable, the
    /// window of unconfirmed batches full): a column added and dropped again in that time is still recorded
    /// in `__harmonylite___columns`, so other nodes' changes that carry it apply without it instead of
    /// waiting parked forever for a column this node will never have again.
    @Suite(.serialized) struct SchemaWatch {
        static let columnState = "SELECT state FROM __harmonylite___columns WHERE table_name = 't' AND name = 'extra';"

        @Test func aColumnAddedAndDroppedWhilePublishingIsHeldBackIsRemembered() throws {
            let directory = try TemporaryDirectory()
            let database = directory.path + "/node1.db"
            try makeDatabase(database, "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
            let port = try freePort()
            // The stopped server stays stopped however long this takes (its supervisor restarts one silent for its heartbeat_timeout).
            let node = try NodeUnderTest(
                toml: "[nats]\nbind_address = \"127.0.0.1:\(port)\"\n[workers.nats]\nheartbeat_timeout = 600000\n", directory: directory)
            try node.waitUntilReady()
            guard let nats = node.children()["nats"] else { throw TestFailure("no nats-server under the node: \(node.children())") }
            // A stopped server confirms nothing: the capturer's window of unconfirmed batches fills up.
            kill(nats, SIGSTOP)
            defer { kill(nats, SIGCONT) }
            for id in 1...40 {
                try sql(database, "INSERT INTO t VALUES (\(id), 'row \(id)');")
                usleep(20_000)
            }
            try sql(database, "ALTER TABLE t ADD COLUMN extra TEXT; INSERT INTO t VALUES (100, 'with extra', 'x');")
            #expect(eventually(timeout: 20) { (try? sql(database, Self.columnState)) == "live\n" }, "\(node.log.suffix(3000))")
            try sql(database, "ALTER TABLE t DROP COLUMN extra; INSERT INTO t VALUES (101, 'after the drop');")
            #expect(eventually(timeout: 20) { (try? sql(database, Self.columnState)) == "dropped\n" }, "\(node.log.suffix(3000))")
            kill(nats, SIGCONT)
            #expect(node.terminate() == 0)
        }

        private func sql(_ database: String, _ statements: String) throws -> String {
            let result = try runCommand("/usr/bin/sqlite3", ["-cmd", ".timeout 5000", database, statements])
            guard result.status == 0 else { throw TestFailure("sqlite3: \(result.output)") }
            return result.output
        }
    }
}
