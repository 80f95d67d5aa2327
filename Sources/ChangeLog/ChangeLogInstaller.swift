import COpenSSL
import SQLiteKit

/// What an installation left in the database, for the capturer and the applier.
public struct ChangeLogInstallation: Sendable {
    public var catalog: TableCatalog
    public var tableIDs: [String: Int64]
    /// Random per installation: part of every message id, so ids reused after `-cleanup` never name
    /// another installation's messages (in logs, and in the acknowledgements of the broker's publishes).
    public var incarnation: String
    /// HarmonyLite's schema hash of the replicated tables.
    public var schemaHash: String
    /// Messages about tables whose change log had to be rebuilt (its key changed).
    public var notes: [String]
}

/// Installs (or brings up to date) the change logs and capture triggers: idempotent, in one transaction,
/// so an application writing concurrently sees either none or all of it.
public enum ChangeLogInstaller {
    /// Opens the node's database as both workers need it: WAL (so the application's readers and our
    /// writers do not block each other, as HarmonyLite did too) with the change logs installed.
    ///
    /// Our own commits skip the fsync (`synchronous=NORMAL`, this connection only): each holds the write
    /// lock for microseconds instead of a disk flush, which is what made the application's writes wait in
    /// the benchmark. Nothing depends on them being durable at once: a power cut can only roll back the
    /// last applied batches together with their cursor (fetched again from JetStream) or the publish
    /// watermark (published again: the same stamps supersede nothing where they were applied already).
    ///
    /// - Parameter upstreamSeqMap: the node's `seq_map_path`: read when the database is upstream
    ///   HarmonyLite's, so consumption continues where upstream stopped (`UpstreamTakeover`).
    public static func open(_ path: String, node: UInt64, upstreamSeqMap: String? = nil) throws(SQLiteError) -> (SQLiteDatabase, ChangeLogInstallation) {
        let database = try SQLiteDatabase(existingPath: path)
        try database.execute("PRAGMA journal_mode=WAL")
        try database.execute("PRAGMA synchronous=NORMAL")
        return (database, try install(in: database, node: node, upstreamSeqMap: upstreamSeqMap))
    }

    /// - Parameter seen: the columns as looks taken before the write lock was held saw them
    ///   (`ColumnHistory.look`), asked for once it is held and recorded in order before the columns as they
    ///   are now.
    ///
    /// A database upstream HarmonyLite (Go) managed is taken over in the same transaction
    /// (`UpstreamTakeover`); when that cannot finish, nothing is written and the error says what to do.
    public static func install(
        in database: SQLiteDatabase, node: UInt64, upstreamSeqMap: String? = nil, seen: () -> [ColumnHistory.Look] = { [] }
    ) throws(SQLiteError) -> ChangeLogInstallation {
        try database.execute("BEGIN IMMEDIATE")
        do throws(SQLiteError) {
            let installation = try installInTransaction(database, node: node, upstreamSeqMap: upstreamSeqMap, seen: seen)
            try database.execute("COMMIT")
            return installation
        } catch {
            try? database.execute("ROLLBACK")
            throw error
        }
    }

    private static func installInTransaction(
        _ database: SQLiteDatabase, node: UInt64, upstreamSeqMap: String?, seen: () -> [ColumnHistory.Look]
    ) throws(SQLiteError) -> ChangeLogInstallation {
        typealias S = ChangeLogSchema
        // Upstream's objects first, before anything of ours is created or altered: checked, then dropped.
        var takeover: UpstreamTakeover.Plan? = nil
        switch try UpstreamTakeover.plan(database, catalog: try TableCatalog.read(database), seqMapPath: upstreamSeqMap) {
        case nil: break
        case .failure(let refusal)?: throw SQLiteError(code: 1, message: refusal.description)
        case .success(let plan)?:
            try UpstreamTakeover.dropUpstreamObjects(plan, in: database)
            takeover = plan
        }
        let conflictColumns = try database.prepare("SELECT name FROM pragma_table_info(?)").all([.text(S.conflicts)])
        if conflictColumns.contains(where: { $0.first == .text("id") }) {
            try database.execute("ALTER TABLE \(S.quote(S.conflicts)) RENAME TO \(S.quote(S.settledConflictsLog))")
        }
        for sql in S.fixedTables { try database.execute(sql) }
        let firstInstallation = try database.prepare("SELECT 1 FROM \(S.quote(S.meta)) WHERE key = 'incarnation'").all().isEmpty
        try database.prepare("INSERT OR IGNORE INTO \(S.quote(S.meta)) (key, value) VALUES ('incarnation', ?)").run([.text(randomHex(8))])
        let incarnation = try database.prepare("SELECT value FROM \(S.quote(S.meta)) WHERE key = 'incarnation'").all().first?.first ?? .null
        guard case .text(let incarnationBytes) = incarnation else {
            throw SQLiteError(code: 1, message: "\(S.meta) has no incarnation")
        }

        let schemaVersion = try database.scalarInteger("PRAGMA schema_version")
        var catalog = try TableCatalog.read(database)
        let widestKey = catalog.replicated.map { $0.primaryKey.count }.max() ?? 0
        let queueColumns = try database.prepare("SELECT name FROM pragma_table_info(?)").all([.text(S.globalLog)])
        if !queueColumns.contains(where: { $0.first == .text(Array("at".utf8)) }) {
            // An installation from before deferred stamping: its queued entries' row clocks are written.
            try database.execute("ALTER TABLE \(S.quote(S.globalLog)) ADD COLUMN at INTEGER")
            try PendingStamps.setStampedThrough(try PublishWatermark.lastQueuedID(in: database), in: database)
        }
        let keyColumns = queueColumns.count - (queueColumns.contains(where: { $0.first == .text(Array("at".utf8)) }) ? 3 : 2)
        if keyColumns < widestKey {
            for position in (keyColumns + 1)...widestKey {
                try database.execute("ALTER TABLE \(S.quote(S.globalLog)) ADD COLUMN \(S.keyColumn(position))")
            }
        }

        var tableIDs: [String: Int64] = [:]
        var notes = try adoptRenamedTables(database)
        // Row clocks change below (new tables, changed keys): pending stamps first (`PendingStamps`).
        let materializer = StampMaterializer(database: database)
        try materializer.materialize()
        try PendingStamps.setNode(node, in: database)
        let insertName = try database.prepare("INSERT OR IGNORE INTO \(S.quote(S.tables)) (name) VALUES (?)")
        let selectID = try database.prepare("SELECT id FROM \(S.quote(S.tables)) WHERE name = ?")
        let logKey = try database.prepare("SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk")
        let hasTrigger = try database.prepare("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?")
        var failed: [(name: String, reason: String)] = []
        for table in catalog.replicated {
            // One table that cannot be captured (an odd schema, a name SQLite refuses) must not stop the others.
            try database.execute("SAVEPOINT harmonylite_table")
            do throws(SQLiteError) {
                try insertName.run([.text(table.name)])
                guard case .integer(let id) = try selectID.all([.text(table.name)]).first?.first else { throw SQLiteError(code: 1, message: "no table id") }
                tableIDs[table.name] = id
                let existingKey = try logKey.all([.text(S.changeLog(of: table.name))]).compactMap { row -> String? in
                    if case .text(let bytes) = row.first { return String(decoding: bytes, as: UTF8.self) } else { return nil }
                }
                let key = table.primaryKey.map(\.name)
                if !existingKey.isEmpty && existingKey != key {
                    try database.execute("DROP TABLE \(S.quote(S.changeLog(of: table.name)))")
                    notes.append("the primary key of \(table.name) changed (\(existingKey.joined(separator: ",")) → \(key.joined(separator: ","))): its row clocks start afresh")
                }
                try database.execute(S.changeLogTable(table))
                let hadTriggers = !(try hasTrigger.all([.text(S.trigger(of: table.name, "insert"))]).isEmpty)
                if !hadTriggers && !firstInstallation {
                    // A table that appeared since the last installation (created while we ran, or while the node
                    // was down): the rows it already has without a row clock were written before its triggers
                    // existed, so they are captured now. (At the first installation every node is assumed to
                    // start from the same database, as in HarmonyLite; a snapshot restore is how a different
                    // one catches up.) Whether the row-clock table exists says nothing: the applier creates it
                    // when other nodes' rows of the new table arrive first.
                    try database.execute(S.captureExistingRows(table, tableID: id))
                    let captured = database.changes
                    if captured > 0 { notes.append("\(table.name) is new and already had \(captured) row(s): they are captured now") }
                }
                for operation in ["insert", "update", "delete"] {
                    try database.execute("DROP TRIGGER IF EXISTS \(S.quote(S.trigger(of: table.name, operation)))")
                }
                for sql in S.triggers(table, tableID: id) { try database.execute(sql) }

                try database.execute("RELEASE harmonylite_table")
            } catch {
                try database.execute("ROLLBACK TO harmonylite_table")
                try database.execute("RELEASE harmonylite_table")
                tableIDs[table.name] = nil
                failed.append((table.name, "its capture triggers cannot be installed: \(error)"))
            }
        }
        if !failed.isEmpty {
            catalog.replicated.removeAll { table in failed.contains { $0.name == table.name } }
            catalog.refused += failed
        }
        if let takeover {
            notes.append(try UpstreamTakeover.queue(takeover, tableIDs: tableIDs, catalog: catalog, in: database))
        }
        for look in seen() { try ColumnHistory.update(look.tables, schemaVersion: look.schemaVersion, in: database) }
        try ColumnHistory.update(catalog.replicated, schemaVersion: schemaVersion, in: database)
        try materializer.materialize()
        for refused in catalog.refused {
            for operation in ["insert", "update", "delete"] {
                try database.execute("DROP TRIGGER IF EXISTS \(S.quote(S.trigger(of: refused.name, operation)))")
            }
        }
        return ChangeLogInstallation(
            catalog: catalog,
            tableIDs: tableIDs,
            incarnation: String(decoding: incarnationBytes, as: UTF8.self),
            schemaHash: SchemaHash.of(catalog.replicated),
            notes: notes
        )
    }

    /// After `ALTER TABLE old RENAME TO new`, SQLite keeps our triggers attached to the renamed table under
    /// their old names, so `new` would be captured twice (and into `old`'s row clocks). Such triggers are
    /// dropped, and `old`'s row clocks and table id become `new`'s when `new` has none yet, so the rename
    /// keeps every row's stamp and the queue entries already waiting.
    private static func adoptRenamedTables(_ database: SQLiteDatabase) throws(SQLiteError) -> [String] {
        typealias S = ChangeLogSchema
        var notes: [String] = []
        let triggers = try database.rows(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' AND substr(name, 1, \(S.prefix.utf8.count)) = '\(S.prefix)'")
        for row in triggers {
            guard let name = row[0], let table = row[1] else { continue }
            let operations = ["insert", "update", "delete"]
            guard !operations.contains(where: { S.trigger(of: table, $0) == name }) else { continue }
            try database.execute("DROP TRIGGER IF EXISTS \(S.quote(name))")
            guard let operation = operations.first(where: { name.hasSuffix("_change_log_on_" + $0) }) else { continue }
            let old = String(name.dropFirst(S.prefix.count).dropLast(("_change_log_on_" + operation).count))
            let exists = try database.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?")
            let hasClocks = try exists.all([.text(Array(S.changeLog(of: old).utf8))]).first?.first == .integer(1)
            let newHasClocks = try exists.all([.text(Array(S.changeLog(of: table).utf8))]).first?.first == .integer(1)
            guard hasClocks && !newHasClocks else { continue }
            try database.execute("ALTER TABLE \(S.quote(S.changeLog(of: old))) RENAME TO \(S.quote(S.changeLog(of: table)))")
            try database.prepare("UPDATE OR IGNORE \(S.quote(S.tables)) SET name = ? WHERE name = ?").run([.text(Array(table.utf8)), .text(Array(old.utf8))])
            notes.append("\(old) was renamed to \(table): its row clocks and waiting changes carry over")
        }
        return notes
    }

    private static func randomHex(_ bytes: Int) -> String {
        (0..<bytes).map { _ in String(UInt8.random(in: 0...255), radix: 16) }.map { $0.count == 1 ? "0" + $0 : $0 }.joined()
    }
}

/// HarmonyLite's schema hash: SHA-256 (hex) over the tables sorted by name, each as its name followed by
/// `|name:type:notnull:pk` for every column sorted by name, and a newline.
public enum SchemaHash {
    public static func of(_ tables: [TableInfo]) -> String {
        var text = ""
        for table in tables.sorted(by: { $0.name < $1.name }) {
            text += table.name
            for column in table.columns.sorted(by: { $0.name < $1.name }) {
                text += "|\(column.name):\(column.declaredType):\(column.notNull):\(column.primaryKeyPosition > 0)"
            }
            text += "\n"
        }
        return sha256Hex(Array(text.utf8))
    }

    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = bytes.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &digest, &length, EVP_sha256(), nil) }
        return digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
