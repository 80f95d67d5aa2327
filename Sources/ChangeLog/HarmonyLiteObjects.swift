import SQLiteKit

/// HarmonyLite's own objects in a user database: every trigger and table whose name starts with
/// `__harmonylite__` (change logs, the global log, the schema version table).
public enum HarmonyLiteObjects {
    public static let prefix = "__harmonylite__"

    /// Names of our objects of `type` ("table" or "trigger"). Compares the prefix exactly: HarmonyLite's
    /// `LIKE '__harmonylite__%'` treated each `_` as a wildcard.
    public static func names(ofType type: String, in database: SQLiteDatabase) throws(SQLiteError) -> [String] {
        try database.rows(
            "SELECT name FROM sqlite_master WHERE type = '\(type)' AND substr(name, 1, \(prefix.utf8.count)) = '\(prefix)' ORDER BY name"
        ).compactMap { $0.first ?? nil }
    }

    /// What `-cleanup` does: drops every trigger, then every table, of ours, in one transaction, leaving user
    /// tables and rows untouched. Returns how many triggers and tables were dropped.
    /// `keeping`: tables of ours to leave (a snapshot keeps the row clocks, see `ChangeLogSchema.snapshotContent`).
    @discardableResult
    public static func removeAll(from database: SQLiteDatabase, keeping: Set<String> = []) throws(SQLiteError) -> (triggers: Int, tables: Int) {
        try database.execute("BEGIN IMMEDIATE")
        do throws(SQLiteError) {
            let triggers = try names(ofType: "trigger", in: database)
            for trigger in triggers { try database.execute("DROP TRIGGER IF EXISTS \(quoted(trigger))") }
            let tables = try names(ofType: "table", in: database).filter { !keeping.contains($0) }
            for table in tables { try database.execute("DROP TABLE IF EXISTS \(quoted(table))") }
            try database.execute("COMMIT")
            return (triggers.count, tables.count)
        } catch {
            try? database.execute("ROLLBACK")
            throw error
        }
    }

    /// An identifier in double quotes, with embedded quotes doubled. Works on Unicode scalars, not
    /// Characters: a `"` followed by a combining mark is one Character, and splitting on Characters left
    /// that quote undoubled (an identifier could then close the quoting and inject SQL).
    public static func quoted(_ identifier: String) -> String {
        var scalars = String.UnicodeScalarView()
        scalars.append("\"")
        for scalar in identifier.unicodeScalars {
            scalars.append(scalar)
            if scalar == "\"" { scalars.append(scalar) }
        }
        scalars.append("\"")
        return String(scalars)
    }
}
