import HarmonyConfig

/// When to restart a crashed child and when to give up: exponential backoff with jitter over the
/// restarts inside a sliding window, and an intensity limit on that same window (Erlang's
/// `intensity`/`period`). Past the limit the whole node stops, so systemd's own restart policy decides.
public struct RestartPolicy: Equatable, Sendable {
    public var initialDelay: Double
    public var maximumDelay: Double
    public var intensity: Int
    public var period: Double
    /// Delays vary by ±`jitter` (a fraction), so nodes that crashed together do not restart in lockstep.
    public var jitter: Double = 0.2

    public init(initialDelay: Double, maximumDelay: Double, intensity: Int, period: Double) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.intensity = intensity
        self.period = period
    }

    public init(_ settings: WorkerSettings) {
        self.init(
            initialDelay: Double(settings.restartBackoffInitial) / 1000,
            maximumDelay: Double(settings.restartBackoffMax) / 1000,
            intensity: Int(settings.restartIntensity),
            period: Double(settings.restartPeriodSeconds)
        )
    }

    /// The restart history of one child.
    public struct History: Equatable, Sendable {
        /// Times of the restarts still inside the window.
        public private(set) var restarts: [Double] = []

        public init() {}

        /// Records a crash at `now`. Returns the delay before the restart, or nil when the intensity limit
        /// is exceeded. `randomUnit` is a number in 0..<1 (injected so tests are deterministic).
        public mutating func recordCrash(at now: Double, policy: RestartPolicy, randomUnit: Double) -> Double? {
            restarts.removeAll { $0 <= now - policy.period }
            guard restarts.count < policy.intensity else { return nil }
            restarts.append(now)
            let exponent = min(restarts.count - 1, 30)
            let base = min(policy.initialDelay * Double(1 << exponent), policy.maximumDelay)
            return base * (1 - policy.jitter + 2 * policy.jitter * randomUnit)
        }
    }
}
