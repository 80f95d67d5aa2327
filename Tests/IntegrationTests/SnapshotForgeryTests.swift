import Foundation
import NATSClient
import Snapshots
import TestSupport
import Testing

extension ProcessTests {
    /// A doctored snapshot planted in the object store with node 1's real credentials (what anyone holding a
    /// leaked node password, or write access to the store, can do) is refused by the node that needs a
    /// restore: it says why, does not become ready, and its database gets neither the forged row nor the
    /// trigger. Once node 1 saves a real (signed) snapshot over it, the node restores that one.
    ///
    /// The plantings: a forged row with a recomputed SHA-256 and the metadata format of the previous version
    /// (no signature); a trigger that rewrites every insert, likewise; and a forged row whose recomputed
    /// SHA-256 and size replace those of the genuine metadata, keeping everything else (its signature too).
    @Suite(.serialized) struct SnapshotForgery {
        static let schema = "CREATE TABLE kv (k INTEGER PRIMARY KEY, v);"
        static let bucket = "harmonylite-changes-snapshot-store"

        enum Planting: String, CaseIterable, CustomTestStringConvertible {
            case forgedRow, rewritingTrigger, genuineMetadataWithNewHash
            var testDescription: String { rawValue }
        }

        @Test(arguments: Planting.allCases)
        func aDoctoredSnapshotIsRefused(planting: Planting) throws {
            let cluster = try TestCluster(size: 2, schema: Self.schema)
            try cluster.sql(0, (1...20).map { "INSERT INTO kv VALUES (\($0), 'row \($0)');" }.joined())
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "20\n"))
            let saved = try runCommand(Binaries.supervisor, ["-config", cluster.node(0).configPath, "-save-snapshot"])
            #expect(saved.status == 0, "\(saved.output)")

            // The attacker (both servers up: with one of two down, JetStream has no quorum): node 1's credentials, the store's genuine metadata, a doctored copy of node 1's database.
            let connection = try NATSConnection.connect(try cluster.clientSettings(0, name: "intruder"))
            let store = try NATSSnapshotStore(connection: connection, bucket: Self.bucket, replicas: 1)
            let genuine = try #require(try store.latest())
            let file = cluster.directory.path + "/doctored.db"
            _ = try SnapshotMaker.make(from: cluster.path(0), into: file, nodeID: 1)
            let doctoring =
                switch planting {
                case .forgedRow, .genuineMetadataWithNewHash: "INSERT INTO kv VALUES (999, 'forged');"
                case .rewritingTrigger: "CREATE TRIGGER rewrite AFTER INSERT ON kv BEGIN UPDATE kv SET v = 'rewritten' WHERE k = NEW.k; END;"
                }
            let doctored = try runCommand("/usr/bin/sqlite3", [file, doctoring])
            #expect(doctored.status == 0, "\(doctored.output)")
            let (sha256, size) = try FileDigest.sha256(of: file)
            var metadata: SnapshotMetadata
            switch planting {
            case .forgedRow, .rewritingTrigger:
                metadata = SnapshotMetadata(
                    cursor: genuine.cursor, streams: genuine.streams ?? [:], schemaHash: genuine.schemaHash, sha256: sha256,
                    size: size, nodeID: genuine.nodeID, createdAt: genuine.createdAt + 1)
            case .genuineMetadataWithNewHash:
                metadata = genuine
                metadata.sha256 = sha256
                metadata.size = size
            }
            try store.upload(file, metadata: metadata) { _, _ in }

            cluster.stop(1)
            try FileManager.default.removeItem(atPath: cluster.directory.path + "/node2-seq-map.cbor")
            let before = try cluster.sql(1, "SELECT count(*), sum(k) FROM kv;")
            try cluster.start(1)
            let victim = cluster.node(1)
            #expect(eventually(timeout: 60) { victim.log.contains("snapshot refused") }, "\(victim.log.suffix(3000))")
            #expect(victim.notify.with("READY=1").isEmpty, "the node became ready on a refused snapshot")
            #expect(try cluster.sql(1, "SELECT count(*), sum(k) FROM kv;") == before, "the database changed")
            #expect(try cluster.sql(1, "SELECT count(*) FROM sqlite_master WHERE name = 'rewrite';") == "0\n")
            #expect(victim.children()["snapshotter"] != nil, "the snapshotter keeps running (no restart loop)")

            // A real snapshot replaces the planted one: the node restores it at its next look (every 30 s).
            let again = try runCommand(Binaries.supervisor, ["-config", cluster.node(0).configPath, "-save-snapshot"])
            #expect(again.status == 0, "\(again.output)")
            try victim.waitUntilReady(timeout: 90)
            #expect(victim.log.contains("restored the snapshot"), "\(victim.log.suffix(3000))")
            try cluster.sql(1, "INSERT INTO kv VALUES (500, 'mine');")
            let converged = try cluster.converge("SELECT count(*), sum(k), (SELECT v FROM kv WHERE k = 500) FROM kv;", to: "21|710|mine\n", timeout: 30)
            #expect(converged, "\((try? cluster.sql(1, "SELECT * FROM kv WHERE k IN (500, 999);")) ?? "")")
            #expect(try cluster.sql(1, "SELECT count(*) FROM kv WHERE k = 999 OR v = 'rewritten';") == "0\n")
        }
    }
}
