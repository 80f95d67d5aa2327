/// How far the applier is in each stream, three times over: applied, stored in the database, mirrored to
/// the seq map file — each never ahead of the one before — and when storing and mirroring are due.
struct CursorProgress: Sendable {
    /// Something to write now.
    enum Write: Equatable, Sendable {
        case store(StreamCursor)
        case mirror(StreamCursor)
    }

    private(set) var applied: StreamCursor
    private(set) var stored: StreamCursor
    private(set) var mirrored: StreamCursor
    private var storeDueAt: Double?
    private var mirrorDueAt: Double?
    private var mirroredAt: Double?
    private let settings: ApplyPipeline.Settings

    init(cursor: StreamCursor, settings: ApplyPipeline.Settings) {
        applied = cursor
        stored = cursor
        mirrored = cursor
        self.settings = settings
    }

    var nextDeadline: Double? { [storeDueAt, mirrorDueAt].compactMap { $0 }.min() }

    /// A group is applied through `cursor`; `stored` when its transaction wrote the cursor too. Otherwise
    /// (only the node's own batches: nothing written) the cursor is stored on its own `cursorInterval` later.
    mutating func applied(_ cursor: StreamCursor, stored wasStored: Bool, now: Double) {
        applied = cursor
        if wasStored {
            self.stored(cursor, now: now)
        } else if storeDueAt == nil {
            storeDueAt = now + settings.cursorInterval
        }
    }

    /// The database holds `cursor`; the seq map follows at most every `seqMapInterval`.
    mutating func stored(_ cursor: StreamCursor, now: Double) {
        stored = cursor
        if stored == applied { storeDueAt = nil }
        if mirrorDueAt == nil, stored != mirrored {
            mirrorDueAt = max(now, mirroredAt.map { $0 + settings.seqMapInterval } ?? now)
        }
    }

    /// The seq map holds `cursor`.
    mutating func mirrored(_ cursor: StreamCursor, now: Double) {
        mirrored = cursor
        mirroredAt = now
        mirrorDueAt = stored == mirrored ? nil : now + settings.seqMapInterval
    }

    /// The stream was replaced: its position is 0 everywhere (the glue stores and mirrors that at once).
    mutating func restart(_ stream: String) {
        applied[stream] = 0
        stored[stream] = 0
        mirrored[stream] = 0
    }

    /// Behind is safe: tried again `storeRetryInterval` later.
    mutating func storeFailed(now: Double) { storeDueAt = now + settings.storeRetryInterval }

    mutating func mirrorFailed(now: Double) { mirrorDueAt = now + settings.storeRetryInterval }

    /// The write due at `now`, if any (a deadline with nothing left to write is dropped).
    mutating func due(now: Double) -> Write? {
        if let storeDueAt, storeDueAt <= now {
            if applied != stored { return .store(applied) }
            self.storeDueAt = nil
        }
        if let mirrorDueAt, mirrorDueAt <= now {
            if stored != mirrored { return .mirror(stored) }
            self.mirrorDueAt = nil
        }
        return nil
    }

    /// What a stop must still write, deadlines or not.
    var unwritten: Write? {
        if applied != stored { return .store(applied) }
        if stored != mirrored { return .mirror(stored) }
        return nil
    }
}
