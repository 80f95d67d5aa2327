import ChangeLog
import HarmonyConfig
import IPC
import SQLiteKit

#if canImport(Glibc)
import Glibc
#endif

/// `harmonylite -config FILE -check-config`: gathers the facts `ConfigurationCheck` decides on (the
/// configuration, every key's problem, the database: exists or can be created, readable, which tables
/// replicate) without starting anything or writing anything.
enum CheckConfigCommand {
    /// The output, and the exit status (0: the node would start; 2: a problem).
    static func run(path: String, overrides: CommandLineOverrides) -> (text: String, status: Int32) {
        let (loaded, problems) = ConfigurationLoader.check(path: path, overrides: overrides)
        guard let loaded else {
            let check = ConfigurationCheck(file: path, loadProblems: problems)
            return (check.text, SupervisorExitCode.configuration)
        }
        let config = loaded.configuration
        let check = ConfigurationCheck(file: path, configuration: config, warnings: loaded.warnings, database: databaseFacts(config.dbPath))
        return (check.text, check.passed ? 0 : SupervisorExitCode.configuration)
    }

    static func databaseFacts(_ path: String) -> ConfigurationCheck.DatabaseFacts {
        if access(path, F_OK) != 0 {
            return .missing(creatable: access(FilePaths.directory(of: path), W_OK | X_OK) == 0)
        }
        do {
            // Read only: the check writes nothing (no WAL file is made for a database in rollback mode).
            let database = try SQLiteDatabase(readOnlyPath: path)
            let catalog = try TableCatalog.read(database)
            return .readable(replicated: catalog.replicated.map(\.name).sorted(), refused: catalog.refused)
        } catch {
            return .unreadable("\(error)")
        }
    }
}
