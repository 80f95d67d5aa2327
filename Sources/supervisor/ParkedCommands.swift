import ChangeLog
import HarmonyConfig
import SQLiteKit

/// `harmonylite -parked` and `-retry-parked`: the dead-letter table seen and nudged from the command line.
/// Both work on the database directly, with the node running or not: the list is a read, and the retry
/// request is a row in `__harmonylite___meta` the running applier watches at its tick (a stopped node
/// retries its parked messages at its next start anyway).
enum ParkedCommands {
    /// One line per parked message, tab-separated: stream, sequence, kind, reason, parked at, attempts.
    static func list(_ config: Configuration) throws -> String {
        let messages = try ParkedMessages.all(in: try SQLiteDatabase(existingPath: config.dbPath))
        guard !messages.isEmpty else { return "no parked messages in \(config.dbPath)" }
        let header = ["stream", "sequence", "kind", "reason", "parked_at", "attempts"].joined(separator: "\t")
        let lines = messages.map { message in
            [message.stream, "\(message.sequence)", "\(message.kind)", message.reason, message.parkedAt, "\(message.attempts)"].joined(separator: "\t")
        }
        return ([header] + lines).joined(separator: "\n")
    }

    static func requestRetry(_ config: Configuration) throws -> String {
        let database = try SQLiteDatabase(existingPath: config.dbPath)
        let count = try ParkedMessages.count(in: database)
        guard count > 0 else { return "no parked messages in \(config.dbPath): nothing to retry" }
        try ParkedMessages.requestRetry(in: database)
        return "asked the applier to retry \(count) parked message(s) of \(config.dbPath): a running node does so at its next tick"
    }
}
