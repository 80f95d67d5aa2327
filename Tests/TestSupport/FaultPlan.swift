import Foundation

/// A process of a node the fault suite can kill or pause.
package enum FaultTarget: String, CaseIterable, Sendable {
    case supervisor, nats, broker, snapshotter, applier, capturer

    /// What `NodeUnderTest.children()` calls it (nil: the supervisor itself).
    package var childRole: String? { self == .supervisor ? nil : rawValue }
}

/// One kind of fault. Every fault hits one node; those with a duration are healed when it is over.
package enum FaultKind: Hashable, Sendable, CustomStringConvertible {
    /// `kill -9`. A killed supervisor takes its children with it; the test starts the node again, as
    /// systemd's `Restart=` would. A killed worker or nats-server is the supervisor's to restart.
    case kill(FaultTarget)
    /// `SIGSTOP`, `SIGCONT` after the fault's duration (workers and nats-server; a paused worker that misses
    /// its heartbeats is replaced by the supervisor meanwhile).
    case pause(FaultTarget)
    /// The node's network link leaves the bridge that joins the nodes' namespaces; it rejoins when healed.
    case partition
    /// The filesystem holding the node's database (and its JetStream store) fills up; the filler goes when healed.
    case diskFull
    /// The production guide's recovery: `-save-snapshot` on another node, then the node is stopped, its seq
    /// map deleted, and started again (it restores the snapshot).
    case restoreWithoutSeqMap
    /// The node is stopped for the fault's duration while the others write past `max_entries`; then
    /// `-save-snapshot` on another node, and the node starts again (it restores over the gap).
    case gapRestore

    /// The name `HL_FAULT_KINDS` uses, and the table prints.
    package var family: String {
        switch self {
        case .kill: "kill"
        case .pause: "pause"
        case .partition: "partition"
        case .diskFull: "diskFull"
        case .restoreWithoutSeqMap: "restore"
        case .gapRestore: "gapRestore"
        }
    }

    package var description: String {
        switch self {
        case .kill(let target): "kill -9 \(target.rawValue)"
        case .pause(let target): "SIGSTOP \(target.rawValue)"
        default: family
        }
    }

    /// Whether the fault lasts and is healed by a second action.
    package var lasts: Bool {
        switch self {
        case .kill, .restoreWithoutSeqMap: false
        case .pause, .partition, .diskFull, .gapRestore: true
        }
    }
}

package struct Fault: Equatable, Sendable, CustomStringConvertible {
    package var kind: FaultKind
    /// 0-based node index.
    package var node: Int
    /// Seconds after the start of the run.
    package var at: Double
    /// Seconds until it is healed (0 for faults that do not last).
    package var duration: Double

    package init(kind: FaultKind, node: Int, at: Double, duration: Double) {
        self.kind = kind
        self.node = node
        self.at = at
        self.duration = duration
    }

    package var description: String {
        "\(kind) on node \(node + 1) at \(at.formatted1) s" + (kind.lasts ? " for \(duration.formatted1) s" : "")
    }
}

/// Which faults a run injects, on which node, when: a pure function of a seed. Faults never overlap (one
/// at a time, so what went wrong can be pinned on one), in a random order; each kill round kills every
/// process type once, on random nodes.
package struct FaultPlan: Sendable {
    package struct Settings: Sendable {
        package var nodes = 3
        package var killRounds = 1
        package var pauses = 2
        package var partitions = 1
        package var diskFulls = 1
        package var restores = 0
        package var gapRestores = 0
        /// Seconds before the first fault (the workload is under way).
        package var lead = 3.0
        /// Seconds between the end of one fault and the start of the next.
        package var gap: ClosedRange<Double> = 1.5...3
        package var pauseLength: ClosedRange<Double> = 1...8
        package var partitionLength: ClosedRange<Double> = 4...12
        package var diskFullLength: ClosedRange<Double> = 3...8
        package var gapRestoreLength: ClosedRange<Double> = 10...15

        package init() {}
    }

    package let seed: UInt64
    package let faults: [Fault]

    package init(seed: UInt64, settings: Settings) {
        self.seed = seed
        var rng = SplitMix64(seed: seed)
        let nodes = max(1, settings.nodes)
        func node() -> Int { Int.random(in: 0..<nodes, using: &rng) }
        var kinds: [(FaultKind, Int, Double)] = []
        for _ in 0..<settings.killRounds {
            for target in FaultTarget.allCases.shuffled(using: &rng) { kinds.append((.kill(target), node(), 0)) }
        }
        let pausable = FaultTarget.allCases.filter { $0 != .supervisor }
        for _ in 0..<settings.pauses {
            let target = pausable[Int.random(in: 0..<pausable.count, using: &rng)]
            kinds.append((.pause(target), node(), Double.random(in: settings.pauseLength, using: &rng)))
        }
        for _ in 0..<settings.partitions { kinds.append((.partition, node(), Double.random(in: settings.partitionLength, using: &rng))) }
        for _ in 0..<settings.diskFulls { kinds.append((.diskFull, node(), Double.random(in: settings.diskFullLength, using: &rng))) }
        for _ in 0..<settings.restores { kinds.append((.restoreWithoutSeqMap, node(), 0)) }
        for _ in 0..<settings.gapRestores { kinds.append((.gapRestore, node(), Double.random(in: settings.gapRestoreLength, using: &rng))) }
        // Kill rounds keep their own order (every process type once per round); the other faults fall between them.
        var ordered: [(FaultKind, Int, Double)] = []
        var others = Array(kinds.filter { if case .kill = $0.0 { false } else { true } }.shuffled(using: &rng))
        let kills = kinds.filter { if case .kill = $0.0 { true } else { false } }
        for kill in kills {
            if !others.isEmpty && Int.random(in: 0..<4, using: &rng) == 0 { ordered.append(others.removeFirst()) }
            ordered.append(kill)
        }
        ordered += others
        var time = settings.lead
        var faults: [Fault] = []
        for (kind, node, duration) in ordered {
            faults.append(Fault(kind: kind, node: node, at: time, duration: duration))
            time += duration + Double.random(in: settings.gap, using: &rng)
        }
        self.faults = faults
    }

    /// A plan given fault by fault (tests of the schedule).
    package init(faults: [Fault]) {
        seed = 0
        self.faults = faults
    }

    /// When the last fault is healed.
    package var end: Double { faults.map { $0.at + $0.duration }.max() ?? 0 }
}

/// Walks a plan as time passes: `due(now:)` says what to do now, `done(now:)` says the glue finished doing it.
/// A run that falls behind the plan (a node restart that took a while) shifts the rest of the plan, so every
/// fault keeps its length and the gap before the next one. Heals come before injections, and nothing is
/// injected while a fault lasts.
package struct FaultSchedule: Sendable {
    package enum Action: Equatable, Sendable {
        case inject(Fault)
        case heal(Fault)
    }

    private var pending: [Fault]
    private var active: Fault?
    /// How far the run is behind the plan, in seconds.
    private(set) var delay = 0.0
    /// When the last action returned was planned (plan time), until `done` took it into account.
    private var lastPlanned: Double?

    package init(_ plan: FaultPlan) { pending = plan.faults.sorted { $0.at < $1.at } }

    package var isFinished: Bool { pending.isEmpty && active == nil }

    /// The actions due at `now` (seconds since the start of the run), each returned once.
    package mutating func due(now: Double) -> [Action] {
        if let fault = active {
            guard fault.at + fault.duration + delay <= now else { return [] }
            active = nil
            lastPlanned = fault.at + fault.duration
            return [.heal(fault)]
        }
        guard let next = pending.first, next.at + delay <= now else { return [] }
        pending.removeFirst()
        lastPlanned = next.at
        if next.kind.lasts { active = next }
        return [.inject(next)]
    }

    /// The glue finished the actions `due` returned at `now`: whatever it took beyond the plan delays the rest.
    /// (Nothing when `due` returned nothing.)
    package mutating func done(now: Double) {
        guard let planned = lastPlanned else { return }
        delay = max(delay, now - planned)
        lastPlanned = nil
    }
}

extension Double {
    package var formatted1: String { String(format: "%.1f", self) }
}
