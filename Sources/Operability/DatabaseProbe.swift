import SQLiteKit

/// `/health`'s database checks, run on the HTTP thread: the database answers `SELECT 1` on a read-only
/// connection, and our capture triggers are in its schema.
public enum DatabaseProbe {
    public struct Result: Sendable, Equatable {
        public var connected: Bool
        public var cdcInstalled: Bool
        public var error: String?

        public init(connected: Bool, cdcInstalled: Bool, error: String? = nil) {
            self.connected = connected
            self.cdcInstalled = cdcInstalled
            self.error = error
        }
    }

    public static func check(_ path: String) -> Result {
        do {
            let database = try SQLiteDatabase(readOnlyPath: path, busyTimeoutMilliseconds: 1000)
            _ = try database.scalarInteger("SELECT 1")
            // `_` is a LIKE wildcard: escape it, so only our own prefix matches.
            let triggers = try database.scalarInteger(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE '\\_\\_harmonylite\\_\\_%' ESCAPE '\\'")
            return Result(connected: true, cdcInstalled: triggers > 0)
        } catch {
            return Result(connected: false, cdcInstalled: false, error: "\(error)")
        }
    }
}
