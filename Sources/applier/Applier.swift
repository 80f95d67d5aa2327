import SQLiteKit
import WorkerRuntime

#if canImport(Glibc)
import Glibc
#endif

/// Applies other nodes' changes. For now it opens the database (which must exist and be a SQLite file)
/// and holds it; applying arrives with the replication issue.
@main
struct Applier {
    static func main() throws {
        let runtime = WorkerRuntime.start(name: "applier")
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
