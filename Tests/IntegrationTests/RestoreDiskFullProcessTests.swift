import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessTests {
    /// A restore the node needs that finds no disk space for itself refuses the start: exit status 78 (not
    /// restarted by systemd), the error naming the database and the cause, the snapshotter not restarted into
    /// the same full disk (it used to exit 1 six times, then the node exited 1 and systemd started it again).
    @Suite(.serialized) struct RestoreDiskFull {
        @Test(.enabled(if: geteuid() == 0, "needs root to mount a small tmpfs"))
        func aRestoreWithoutDiskSpaceStopsTheNodeWith78NamingTheDatabase() throws {
            // 48 MiB: room for the node and its JetStream store, not for a download plus the 64 MiB kept spare.
            let disk = try FaultDisk(megabytes: 48)
            defer { disk.unmount() }
            // Every node placed, so all three share the cluster secret the harness writes for placed nodes.
            let elsewhere = try TemporaryDirectory()
            let cluster = try TestCluster(
                schema: SnapshotRecovery.schema, extraTOML: Array(repeating: SnapshotRecovery.frequentSnapshots, count: 3),
                placements: [
                    NodePlacement(databaseDirectory: elsewhere.path), NodePlacement(databaseDirectory: elsewhere.path),
                    NodePlacement(databaseDirectory: disk.path),
                ])
            try cluster.sql(0, (1...20).map { "INSERT INTO kv VALUES (\($0), 'row \($0)');" }.joined())
            #expect(try cluster.converge("SELECT count(*) FROM kv;", to: "20\n"))
            #expect(SnapshotRecovery.waitForFreshSnapshots(cluster), "\(cluster.logs().suffix(3000))")
            cluster.stop(2)
            try FileManager.default.removeItem(atPath: cluster.directory.path + "/node3-seq-map.cbor")
            try cluster.start(2)
            let node = cluster.node(2)
            let status = node.waitForExit(timeout: 60)
            let log = node.log
            #expect(status == 78, "exit status \(String(describing: status)); \(log.suffix(4000))")
            #expect(log.contains("no disk space for the snapshot restore on the filesystem holding \(disk.path)/node3.db"), "\(log.suffix(4000))")
            #expect(!supervisorLines(log, "child refused the start", ["child": "snapshotter"]).isEmpty, "\(log.suffix(4000))")
            #expect(supervisorLines(log, SupervisorMessage.restarting, ["child": "snapshotter"]).isEmpty, "not restarted into the full disk")
        }
    }
}
