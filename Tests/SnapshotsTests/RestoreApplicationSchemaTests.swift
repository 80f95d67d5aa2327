import Foundation
import TestSupport
import Testing

@testable import ChangeLog
@testable import SQLiteKit
@testable import Snapshots

/// A restore of an application schema with its own triggers, foreign keys and UNIQUE constraints: the
/// application's objects come back with the data and keep working, and the node's unpublished changes are
/// written back as they were — a trigger's effects are not made twice, a UNIQUE swap is not a conflict.
extension SnapshotTests {
    static let applicationSchema = """
        PRAGMA journal_mode=WAL;
        CREATE TABLE authors(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
        CREATE TABLE books(id INTEGER PRIMARY KEY, author INTEGER NOT NULL REFERENCES authors(id) ON DELETE CASCADE, title TEXT);
        CREATE TABLE audit(book INTEGER PRIMARY KEY, what TEXT);
        CREATE TRIGGER book_added AFTER INSERT ON books BEGIN INSERT INTO audit VALUES (NEW.id, 'added ' || NEW.title); END;
        """

    func applicationNode(_ name: String, _ sql: String, id: UInt64) throws -> String {
        let path = directory.path + "/" + name
        try makeDatabase(path, Self.applicationSchema)
        _ = try ChangeLogInstaller.open(path, node: id)
        try app(path, "PRAGMA foreign_keys=ON;" + sql)
        return path
    }

    @Test func restoreKeepsTheApplicationsTriggersConstraintsAndUnpublishedSwaps() throws {
        let source = try applicationNode(
            "a.db",
            """
            INSERT INTO authors VALUES (1, 'Le Guin'), (2, 'Lem'), (3, 'Dick');
            INSERT INTO books VALUES (1, 1, 'Earthsea'), (2, 2, 'Solaris'), (3, 3, 'Ubik');
            DELETE FROM authors WHERE id = 3;
            """, id: 1)
        #expect(try app(source, "SELECT count(*) FROM books; SELECT count(*) FROM audit;") == "2\n3\n", "the cascade and the trigger ran on the origin")
        let file = directory.path + "/snapshot.db"
        let metadata = try SnapshotMaker.make(from: source, into: file, nodeID: 1)

        // Node 2, later and unpublished: the same two authors, their names swapped through a temporary value
        // (UNIQUE at every step), an author and a book by them (the trigger writes an audit row, captured as
        // a change of its own).
        Thread.sleep(forTimeInterval: 0.01)
        let target = try applicationNode(
            "b.db",
            """
            INSERT INTO authors VALUES (1, 'Le Guin'), (2, 'Lem');
            UPDATE authors SET name = 'swap' WHERE id = 1; UPDATE authors SET name = 'Le Guin' WHERE id = 2; UPDATE authors SET name = 'Lem' WHERE id = 1;
            INSERT INTO authors VALUES (4, 'Tiptree'); INSERT INTO books VALUES (4, 4, 'Houston');
            """, id: 2)
        let outcome = try SnapshotRestorer.restore(file, metadata: metadata, into: target, nodeID: 2)
        #expect(outcome.supersededLocalChanges == 0, "kept \(outcome.keptLocalChanges)")

        #expect(try app(target, "SELECT group_concat(id || ':' || name) FROM (SELECT * FROM authors ORDER BY id);") == "1:Lem,2:Le Guin,4:Tiptree\n")
        #expect(
            try app(target, "SELECT group_concat(id || ':' || author || ':' || title) FROM (SELECT * FROM books ORDER BY id);")
                == "1:1:Earthsea,2:2:Solaris,4:4:Houston\n")
        #expect(
            try app(target, "SELECT group_concat(what, ', ') FROM (SELECT * FROM audit ORDER BY book);")
                == "added Earthsea, added Solaris, added Ubik, added Houston\n", "the audit row was made once, on the write")
        #expect(try app(target, "SELECT count(*) FROM \(ChangeLogSchema.conflicts);") == "0\n", "a swap is not a conflict")
        #expect(try app(target, "PRAGMA foreign_key_check; PRAGMA integrity_check;") == "ok\n")

        // The application's trigger, foreign key and UNIQUE constraint still work after the restore.
        try app(target, "PRAGMA foreign_keys=ON; INSERT INTO books VALUES (5, 2, 'The Dispossessed'); DELETE FROM authors WHERE id = 1;")
        #expect(try app(target, "SELECT group_concat(id) FROM books; SELECT count(*) FROM audit;") == "2,4,5\n5\n")
        #expect(throws: TestFailure.self) { try self.app(target, "INSERT INTO authors VALUES (9, 'Tiptree');") }
    }
}

extension SnapshotTests {
    /// An index and a generated column on `json_extract()`: SQLite 3.40 refuses to read such a schema with
    /// `trusted_schema = OFF` (the JSON functions are not marked innocuous), which made every restore fail
    /// and the node stop for good (found by an adversarial review). The restore reads it, and the index still
    /// works afterwards.
    @Test func aSchemaWithJSONFunctionsIsRestored() throws {
        let schema = """
            PRAGMA journal_mode=WAL;
            CREATE TABLE docs(id INTEGER PRIMARY KEY, doc TEXT, email TEXT GENERATED ALWAYS AS (json_extract(doc, '$.email')) VIRTUAL);
            CREATE UNIQUE INDEX docs_email ON docs(json_extract(doc, '$.email'));
            """
        let source = directory.path + "/json-a.db", target = directory.path + "/json-b.db"
        for path in [source, target] {
            try makeDatabase(path, schema)
            _ = try ChangeLogInstaller.open(path, node: path == source ? 1 : 2)
        }
        // The application opens it with the default trusted_schema = ON (OFF, SQLite 3.40 cannot read this schema).
        func shell(_ path: String, _ sql: String) throws -> String {
            let result = try runCommand("/usr/bin/sqlite3", [path, sql])
            guard result.status == 0 else { throw TestFailure("sqlite3: \(result.output)") }
            return result.output
        }
        _ = try shell(source, #"INSERT INTO docs(id, doc) VALUES (1, '{"email": "u@x"}'), (2, '{"email": "v@x"}');"#)
        let file = directory.path + "/json-snapshot.db"
        let metadata = try SnapshotMaker.make(from: source, into: file, nodeID: 1)
        _ = try SnapshotRestorer.restore(file, metadata: metadata, into: target, nodeID: 2)
        #expect(try shell(target, "SELECT group_concat(id || ':' || email) FROM (SELECT * FROM docs ORDER BY id);") == "1:u@x,2:v@x\n")
        let duplicate = try runCommand("/usr/bin/sqlite3", [target, #"INSERT INTO docs(id, doc) VALUES (3, '{"email": "u@x"}');"#])
        #expect(duplicate.status != 0 && duplicate.output.contains("UNIQUE constraint failed"), "\(duplicate.output)")
    }
}
