import SQLiteKit

/// Why a message is parked, in one word as the table stores it (`undecodable`, `schema-missing`, …). A word
/// this build does not know (written by another version) is kept as it is.
public enum ParkedKind: Equatable, Sendable, CustomStringConvertible {
    /// The payload is not a change batch.
    case undecodable
    /// Its subject names another publisher than its origin: never applied, not even by `-retry-parked`.
    case forgedOrigin
    /// This node lacks the table or a column.
    case schemaMissing
    /// The event's key is not the local primary key.
    case keyMismatch
    /// SQLite refused the write with this primary result code.
    case database(Int32)
    /// Values of columns whose fate is unknown here, kept aside (`ChangeApplier`): shown, never retried (no
    /// retry can tell which column they belong to).
    case columnsKeptAside
    /// A word this build does not know.
    case other(String)

    /// The stored word back to its kind.
    public init(stored word: String) {
        switch word {
        case "undecodable": self = .undecodable
        case "forged-origin": self = .forgedOrigin
        case "schema-missing": self = .schemaMissing
        case "key-mismatch": self = .keyMismatch
        case "columns-kept-aside": self = .columnsKeptAside
        default:
            if word.hasPrefix("database-"), let code = Int32(word.dropFirst("database-".count)) {
                self = .database(code)
            } else {
                self = .other(word)
            }
        }
    }

    public var description: String {
        switch self {
        case .undecodable: "undecodable"
        case .forgedOrigin: "forged-origin"
        case .schemaMissing: "schema-missing"
        case .keyMismatch: "key-mismatch"
        case .database(let code): "database-\(code & 0xff)"
        case .columnsKeptAside: "columns-kept-aside"
        case .other(let word): word
        }
    }

    /// Whether a retry of the parked messages tries it again.
    public var isRetried: Bool { self != .forgedOrigin && self != .columnsKeptAside }
}

/// A message this node could not apply, kept with its bytes in `__harmonylite___parked`.
public struct ParkedMessage: Equatable, Sendable {

    public var stream: String
    public var sequence: UInt64
    public var payload: [UInt8]
    public var reason: String
    /// Why, in one word (stored as `ParkedKind.description`).
    public var kind: ParkedKind
    /// UTC wall time of the parking, ISO 8601.
    public var parkedAt: String
    /// Failed attempts: before it was parked, and each retry since.
    public var attempts: Int

    public init(stream: String, sequence: UInt64, payload: [UInt8], reason: String, kind: ParkedKind, parkedAt: String = "", attempts: Int) {
        self.stream = stream
        self.sequence = sequence
        self.payload = payload
        self.reason = reason
        self.kind = kind
        self.parkedAt = parkedAt
        self.attempts = attempts
    }
}

/// The dead-letter table: messages the applier could not apply (undecodable, a table, column or key this
/// node lacks, a constraint that kept refusing them). Parking one moves the cursor past it in the same
/// transaction, so no message holds a shard. They are applied later, when the schema changes or a person
/// asks (`-retry-parked`); applying late is safe because every row is last-writer-wins on its stamp: a
/// parked event older than what the row holds now loses to it, exactly as if it had arrived in time.
public enum ParkedMessages {
    /// The `__harmonylite___meta` key `-retry-parked` changes; the applier retries when it sees it change.
    public static let retryRequestKey = "retry_parked_requested"

    private static var table: String { ChangeLogSchema.quote(ChangeLogSchema.parked) }
    private static var meta: String { ChangeLogSchema.quote(ChangeLogSchema.meta) }

    /// Parks `message` (its `parkedAt` is now) and stores `cursor` (stream → last sequence), in one transaction.
    public static func park(_ message: ParkedMessage, cursor: [String: UInt64], in database: SQLiteDatabase) throws(SQLiteError) {
        try database.execute("BEGIN IMMEDIATE")
        do throws(SQLiteError) {
            try store(message, in: database)
            let storeCursor = try database.prepare("INSERT OR REPLACE INTO \(meta) (key, value) VALUES (?, ?)")
            for (stream, sequence) in cursor {
                try storeCursor.run([.text(Array(("cursor:" + stream).utf8)), .integer(Int64(bitPattern: sequence))])
            }
            try database.execute("COMMIT")
        } catch {
            try? database.execute("ROLLBACK")
            throw error
        }
    }

    /// Writes `message` (replacing one of the same stream and sequence), inside the caller's transaction.
    static func store(_ message: ParkedMessage, in database: SQLiteDatabase) throws(SQLiteError) {
        try database.prepare(
            "INSERT OR REPLACE INTO \(table) (stream, sequence, payload, reason, kind, parked_at, attempts) "
                + "VALUES (?, ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?)"
        ).run([
            .text(Array(message.stream.utf8)), .integer(Int64(bitPattern: message.sequence)), .blob(message.payload),
            .text(Array(message.reason.utf8)), .text(Array(message.kind.description.utf8)), .integer(Int64(message.attempts)),
        ])
    }

    /// Parks the rows of a message that this node cannot apply yet, the others having applied: a message
    /// parked already (a retry) keeps its attempts and first parking time and now holds only these rows.
    static func setAside(_ message: ParkedMessage, in database: SQLiteDatabase) throws(SQLiteError) {
        try database.prepare(
            "INSERT INTO \(table) (stream, sequence, payload, reason, kind, parked_at, attempts) "
                + "VALUES (?, ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?) "
                + "ON CONFLICT (stream, sequence) DO UPDATE SET payload = excluded.payload, reason = excluded.reason, kind = excluded.kind"
        ).run([
            .text(Array(message.stream.utf8)), .integer(Int64(bitPattern: message.sequence)), .blob(message.payload),
            .text(Array(message.reason.utf8)), .text(Array(message.kind.description.utf8)), .integer(Int64(message.attempts)),
        ])
    }

    /// Every parked message, in (stream, sequence) order; none when the table does not exist (yet).
    public static func all(in database: SQLiteDatabase) throws(SQLiteError) -> [ParkedMessage] {
        guard try exists(in: database) else { return [] }
        return try database.prepare("SELECT stream, sequence, payload, reason, kind, parked_at, attempts FROM \(table) ORDER BY stream, sequence")
            .all().map { row in
                ParkedMessage(
                    stream: text(row[0]), sequence: UInt64(bitPattern: integer(row[1])), payload: bytes(row[2]),
                    reason: text(row[3]), kind: ParkedKind(stored: text(row[4])), parkedAt: text(row[5]), attempts: Int(integer(row[6])))
            }
    }

    public static func count(in database: SQLiteDatabase) throws(SQLiteError) -> Int {
        guard try exists(in: database) else { return 0 }
        return Int(try database.scalarInteger("SELECT count(*) FROM \(table)"))
    }

    /// It applied: it is no longer parked.
    public static func remove(stream: String, sequence: UInt64, in database: SQLiteDatabase) throws(SQLiteError) {
        try database.prepare("DELETE FROM \(table) WHERE stream = ? AND sequence = ?")
            .run([.text(Array(stream.utf8)), .integer(Int64(bitPattern: sequence))])
    }

    /// It failed again: one more attempt, and the latest reason.
    public static func failedAgain(stream: String, sequence: UInt64, reason: String, in database: SQLiteDatabase) throws(SQLiteError) {
        try database.prepare("UPDATE \(table) SET attempts = attempts + 1, reason = ? WHERE stream = ? AND sequence = ?")
            .run([.text(Array(reason.utf8)), .text(Array(stream.utf8)), .integer(Int64(bitPattern: sequence))])
    }

    /// What `-retry-parked` does: changes the request the running applier watches.
    public static func requestRetry(in database: SQLiteDatabase) throws(SQLiteError) {
        try database.execute(
            "INSERT INTO \(meta) (key, value) VALUES ('\(retryRequestKey)', 1) ON CONFLICT (key) DO UPDATE SET value = value + 1")
    }

    /// The current schema version and retry request: what the applier watches at its tick (one cheap read).
    public static func watched(in database: SQLiteDatabase) throws(SQLiteError) -> (schemaVersion: Int64, retryRequest: String?) {
        let row =
            try database.prepare(
                "SELECT (SELECT schema_version FROM pragma_schema_version), (SELECT value FROM \(meta) WHERE key = '\(retryRequestKey)')"
            ).all().first ?? []
        let request: String? = row.count > 1 && row[1] != .null ? "\(row[1])" : nil
        return (row.first.map(integer) ?? 0, request)
    }

    private static func exists(in database: SQLiteDatabase) throws(SQLiteError) -> Bool {
        try database.scalarInteger("SELECT count(*) FROM sqlite_master WHERE name = '\(ChangeLogSchema.parked)'") > 0
    }

    private static func text(_ value: SQLiteValue) -> String {
        if case .text(let bytes) = value { String(decoding: bytes, as: UTF8.self) } else { "" }
    }

    private static func integer(_ value: SQLiteValue) -> Int64 {
        if case .integer(let number) = value { number } else { 0 }
    }

    private static func bytes(_ value: SQLiteValue) -> [UInt8] {
        switch value {
        case .blob(let bytes), .text(let bytes): bytes
        default: []
        }
    }
}
