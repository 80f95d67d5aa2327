/// Why a delivery did not apply, as the glue reports it: what the core decides from (park it now, park it
/// after a few retries, or retry it for as long as it takes).
public struct ApplyFailure: Equatable, Sendable {
    /// Stored with a parked message as `ParkedKind` (ChangeLog), whose words name it in logs and `-parked`.
    public enum Kind: Equatable, Sendable {
        /// The payload is not a change batch: no retry can change that.
        case undecodable
        /// The subject names another publisher than the batch's origin (a node forging another's events),
        /// or is no change subject: never applied, not even by a retry of the parked messages.
        case forgedOrigin
        /// This node lacks the table or a column (a migration not run here yet): waits for a schema change.
        case schemaMissing
        /// The event's key is not the local primary key: the schemas differ.
        case keyMismatch
        /// SQLite refused the write, with its (possibly extended) result code.
        case database(Int32)
    }

    public var kind: Kind
    public var reason: String

    public init(kind: Kind, reason: String) {
        self.kind = kind
        self.reason = reason
    }

    /// What becomes of a single delivery that failed this way.
    enum Disposition: Equatable {
        case park
        /// Retried with backoff; parked once it has failed more than this many retries.
        case parkAfterRetries(Int)
        /// Retried with backoff for as long as it takes: the database, not the message, is the problem
        /// (busy, locked, a full disk, an I/O error); nothing is lost while the node waits.
        case retry
    }

    func disposition(constraintRetries: Int) -> Disposition {
        switch kind {
        case .undecodable, .forgedOrigin, .schemaMissing, .keyMismatch:
            return .park
        case .database(let code):
            // SQLITE_TOOBIG, SQLITE_CONSTRAINT, SQLITE_MISMATCH: the message's own rows are refused.
            return [18, 19, 20].contains(code & 0xff) ? .parkAfterRetries(constraintRetries) : .retry
        }
    }
}
