/// Says, once each way, when a filesystem the node writes to (the database's directory, the embedded
/// JetStream store) runs full and when space is back, so the log tells what happened and what the node does
/// about it. No I/O: `EmbeddedServerMachine` passes the free bytes the supervisor measured (`statvfs`) and the time.
public struct DiskSpaceWatch: Sendable {
    public enum Report: Equatable, Sendable {
        case full(Holding, path: String, freeBytes: UInt64)
        case recovered(Holding, path: String, freeBytes: UInt64)
    }

    /// What a watched filesystem holds.
    public enum Holding: String, Equatable, Sendable {
        case database = "the database"
        case store = "the JetStream store"
        /// Both on one filesystem: watched once.
        case databaseAndStore = "the database and the JetStream store"
    }

    /// What is watched: what the filesystem holds, and a path on it.
    public struct Place: Equatable, Sendable {
        public var holding: Holding
        public var path: String
        public init(_ holding: Holding, path: String) {
            self.holding = holding
            self.path = path
        }
    }

    /// Below this many free bytes the filesystem counts as full; it counts as recovered at twice as many, so a
    /// filesystem hovering at the line does not fill the log.
    public let fullBelow: UInt64
    /// Seconds between measurements.
    public let interval: Double
    public let places: [Place]
    private var fullPaths: Set<String> = []
    public private(set) var nextAt: Double

    public init(places: [Place], fullBelow: UInt64 = 1 << 20, interval: Double = 1, now: Double) {
        self.places = places
        self.fullBelow = fullBelow
        self.interval = interval
        nextAt = now
    }

    /// Whether to measure now.
    public mutating func due(now: Double) -> Bool {
        guard now >= nextAt else { return false }
        nextAt = now + interval
        return true
    }

    /// The free bytes measured at `place`; a report when it crossed a line.
    public mutating func measured(_ place: Place, freeBytes: UInt64) -> Report? {
        if fullPaths.contains(place.path) {
            guard freeBytes >= fullBelow.multipliedReportingOverflow(by: 2).partialValue else { return nil }
            fullPaths.remove(place.path)
            return .recovered(place.holding, path: place.path, freeBytes: freeBytes)
        }
        guard freeBytes < fullBelow else { return nil }
        fullPaths.insert(place.path)
        return .full(place.holding, path: place.path, freeBytes: freeBytes)
    }
}
