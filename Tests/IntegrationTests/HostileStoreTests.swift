import Foundation
import NATSClient
import TestSupport
import Testing

extension ProcessTests {
    /// Whoever can write to the snapshot store can serve any metadata. A cursor of 2^64 − 1 (it trapped the
    /// lease holder's snapshotter on `covered + threshold`, on every node in turn) and an object description
    /// claiming `chunks: -1` (it trapped `0..<chunks`) are refused with a log line naming the field, and the
    /// snapshotter stays up.
    @Suite(.serialized) struct HostileStore {
        static let bucket = "harmonylite-changes-snapshot-store"

        static func hostileMetadata(cursor: String) -> String {
            #"{"createdAt":1763900000000,"cursor":{"harmonylite-changes-1":\#(cursor)},"format":1,"nodeID":9,"schemaHash":"","#
                + #""sha256":"\#(String(repeating: "0", count: 64))","size":4}"#
        }

        @Test func hostileSnapshotMetadataIsRefusedAndTheSnapshotterStaysUp() throws {
            let directory = try TemporaryDirectory()
            let port = try freePort()
            let toml = "[nats]\nbind_address = \"127.0.0.1:\(port)\"\n[snapshot]\nleader_ttl = 3000\n"
            var node = try NodeUnderTest(toml: toml, directory: directory)
            try node.waitUntilReady()
            do {
                let connection = try NATSConnection.connect(try embeddedClientSettings(directory: directory.path, nodeID: 1, port: port, name: "intruder"))
                let store = try ObjectStoreBucket(connection: connection, bucket: Self.bucket, replicas: 1)
                _ = try store.put(
                    "snapshot.db", file: directory.write("fake.db", "fake"),
                    headers: ["Harmonylite-Snapshot": [Self.hostileMetadata(cursor: "18446744073709551615")]])
            }
            #expect(node.terminate() == 0)
            // Started again (its seq map is there: no restore), it takes the lease and reads the newest snapshot.
            node = try NodeUnderTest(toml: toml, directory: directory)
            defer { _ = node.terminate() }
            try node.waitUntilReady()
            #expect(eventually(timeout: 30) { node.log.contains("cursor of harmonylite-changes-1 is 18446744073709551615, above") }, "\(node.log)")
            let snapshotter = node.children()["snapshotter"]
            // A description whose chunk count cannot be (a `Nats-Rollup` replaces the one above).
            let connection = try NATSConnection.connect(try embeddedClientSettings(directory: directory.path, nodeID: 1, port: port, name: "intruder"))
            let description = #"{"name":"snapshot.db","bucket":"\#(Self.bucket)","nuid":"Abc","size":100,"mtime":"x","chunks":-1,"digest":"SHA-256=x"}"#
            try connection.publish(subject: "$O.\(Self.bucket).M.c25hcHNob3QuZGI=", payload: Array(description.utf8), headers: [("Nats-Rollup", "sub")])
            #expect(eventually(timeout: 30) { node.log.contains("it claims 100 bytes in -1 chunks") }, "\(node.log)")
            Thread.sleep(forTimeInterval: 2)
            #expect(node.children()["snapshotter"] == snapshotter, "the snapshotter was restarted")
            #expect(!node.log.contains("snapshotter exited"), "\(node.log)")
        }
    }
}
