import SQLiteKit
import WorkerRuntime

#if canImport(Glibc)
import Glibc
#endif

/// Captures the application's writes. For now it opens the database (which must exist and be a SQLite
/// file) and holds it; change capture arrives with the replication issue.
@main
struct Capturer {
    static func main() throws {
        let runtime = WorkerRuntime.start(name: "capturer")
        let database: SQLiteDatabase
        do {
            database = try SQLiteDatabase(existingPath: runtime.configuration.dbPath)
        } catch {
            runtime.logger.error("cannot open the database: \(error)")
            exit(1)
        }
        try runtime.reportReady("database \(database.path) open")
        let reason = try runtime.run { [] }
        runtime.logger.info("stopping: \(reason)")
    }
}
