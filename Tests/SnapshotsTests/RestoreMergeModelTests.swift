import Foundation
import TestSupport
import Testing

@testable import ChangeEvents
@testable import ChangeLog
@testable import SQLiteKit
@testable import Snapshots

/// Random writes on two nodes that publish to each other at random moments (messages delivered in any
/// order, some late), a snapshot of node 1 at a random moment, node 2 restored from it at the end with
/// nothing delivered again (every message the streams held is trimmed: the hardest case), then both nodes
/// publish and deliver what is left. Both must hold exactly what last-writer-wins over every published
/// version gives (the oracle), rows and row clocks, deletes included.
@Suite struct RestoreMergeModelTests {
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory() }

    /// One node: the application's connection (triggers fire), the capturer's and the applier's.
    final class Node {
        let id: UInt64
        let path: String
        var app: SQLiteDatabase
        var capture: SQLiteDatabase
        var reader: ChangeReader
        var applier: ChangeApplier

        init(id: UInt64, path: String) throws {
            try makeDatabase(path, "PRAGMA journal_mode=WAL;" + SnapshotTests.schema)
            self.id = id
            self.path = path
            (app, capture, reader, applier) = try Self.open(path, id: id)
        }

        static func open(_ path: String, id: UInt64) throws -> (SQLiteDatabase, SQLiteDatabase, ChangeReader, ChangeApplier) {
            let (capture, installation) = try ChangeLogInstaller.open(path, node: id)
            let (applied, _) = try ChangeLogInstaller.open(path, node: id)
            return (
                try SQLiteDatabase(existingPath: path), capture, try ChangeReader(database: capture, installation: installation),
                try ChangeApplier(database: applied, catalog: installation.catalog)
            )
        }

        /// After a restore: connections as the workers open them when they start again.
        func reopen() throws { (app, capture, reader, applier) = try Self.open(path, id: id) }

        func write(_ key: Int64, title: String?) throws {
            if let title {
                try app.prepare("INSERT INTO books (id, title) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET title = excluded.title").run([
                    .integer(key), .text(title),
                ])
            } else {
                try app.prepare("DELETE FROM books WHERE id = ?").run([.integer(key)])
            }
        }

        func publish() throws -> [ChangeEvent] {
            let pending = try reader.pending(after: try PublishWatermark.read(capture), limit: .max)
            if let through = pending.throughID { try PublishWatermark.write(through, to: capture) }
            return pending.events
        }

        func content() throws -> [Int64: String] {
            var rows: [Int64: String] = [:]
            for row in try app.prepare("SELECT id, title FROM books").all() {
                if case .integer(let id) = row[0], case .text(let title) = row[1] { rows[id] = String(decoding: title, as: UTF8.self) }
            }
            return rows
        }

        func clock(_ key: Int64) throws -> [SQLiteValue]? {
            try app.prepare("SELECT __harmonylite__hlc, __harmonylite__node FROM __harmonylite__books_change_log WHERE id = ?").all([.integer(key)]).first
        }
    }

    @Test(arguments: 1...8 as ClosedRange<UInt64>)
    func restoredNodeEndsAsLastWriterWinsSays(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        let nodes = [try Node(id: 1, path: directory.path + "/n1.db"), try Node(id: 2, path: directory.path + "/n2.db")]
        var inFlight: [[ChangeEvent]] = [[], []]
        var published: [ChangeEvent] = []
        let steps = 240
        let snapshotAt = Int.random(in: 20..<(steps - 40), using: &random)
        var snapshot: (file: String, metadata: SnapshotMetadata)?
        for step in 0..<steps {
            if step == snapshotAt {
                let file = directory.path + "/snapshot.db"
                snapshot = (file, try SnapshotMaker.make(from: nodes[0].path, into: file, nodeID: 1))
            }
            let which = Int.random(in: 0...1, using: &random)
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<6:
                let key = Int64.random(in: 1...12, using: &random)
                try nodes[which].write(key, title: Int.random(in: 0..<10, using: &random) < 3 ? nil : "n\(which + 1)-s\(step)")
            case 6..<8:
                let events = try nodes[which].publish()
                published += events
                inFlight[1 - which] += events
            default:
                // Some of what is on the way, in any order.
                inFlight[which].shuffle(using: &random)
                let count = Int.random(in: 0...inFlight[which].count, using: &random)
                _ = try nodes[which].applier.apply(Array(inFlight[which].prefix(count)))
                inFlight[which].removeFirst(count)
            }
        }
        let restored = try SnapshotRestorer.restore(try #require(snapshot).file, metadata: try #require(snapshot).metadata, into: nodes[1].path, nodeID: 2)
        try nodes[1].reopen()
        for _ in 0..<2 {
            for which in 0...1 {
                let events = try nodes[which].publish()
                published += events
                inFlight[1 - which] += events
            }
            for which in 0...1 {
                _ = try nodes[which].applier.apply(inFlight[which])
                inFlight[which] = []
            }
        }

        // The oracle: every row's latest published version by (stamp, writer).
        var latest: [Int64: ChangeEvent] = [:]
        for event in published {
            guard case .integer(let key) = event.key.first else { continue }
            if let held = latest[key], !event.supersedes(stamp: held.stamp, writer: held.writer) { continue }
            latest[key] = event
        }
        var expected: [Int64: String] = [:]
        for (key, event) in latest where event.operation == .upsert {
            if case .text(let title) = event.values[1] { expected[key] = String(decoding: title, as: UTF8.self) }
        }
        let context =
            "seed \(seed), snapshot at step \(snapshotAt), restore kept \(restored.keptLiveVersions) live version(s) and \(restored.keptLocalChanges) unpublished"
        #expect(try nodes[0].content() == expected, "node 1, \(context)")
        #expect(try nodes[1].content() == expected, "node 2, \(context)")
        for (key, event) in latest {
            let clock: [SQLiteValue] = [.integer(Int64(bitPattern: event.stamp)), .integer(Int64(bitPattern: event.writer))]
            #expect(try nodes[0].clock(key) == clock, "node 1's clock of row \(key), \(context)")
            #expect(try nodes[1].clock(key) == clock, "node 2's clock of row \(key), \(context)")
        }
    }
}
