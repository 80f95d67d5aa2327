import Foundation
import HarmonyConfig
import Synchronization
import TestSupport

/// Varies the order in which changes reach each node, for real: while a workload runs, it holds a random
/// node's applier or broker back (SIGSTOP) for a random while, then lets it go (SIGCONT), over and over, in
/// two lanes at once (so two workers, of one node or of two, are sometimes held back together).
/// The schedule — which node, which worker, how long, the gap after — comes from a seed and is logged, so a
/// failure can be replayed (the timing of the writes around it varies from run to run).
///
/// A pause stays below the worker's heartbeat timeout (the defaults of `WorkerSettings`, with room for a
/// heartbeat that was just due): a paused worker is slow, not hung, and the supervisor must not replace it.
final class ArrivalOrderChaos: Sendable {
    /// One step of the schedule.
    struct Step: CustomStringConvertible, Sendable {
        var node: Int
        var worker: Worker
        var seconds: Double
        /// How long to wait after the worker is resumed, before the next step.
        var gap: Double

        var description: String { "node \(node + 1) \(worker.rawValue) \(String(format: "%.2f", seconds)) s" }
    }

    /// The workers paused: they carry changes to a node (broker) and write them (applier).
    static let workers: [Worker] = [.applier, .broker]

    /// The longest pause: 3 s, and at most 60% of the shortest heartbeat timeout among the paused workers
    /// (heartbeats go out four times per timeout, so the supervisor hears nothing for up to a quarter more).
    static var longestPause: Double {
        let timeout = workers.compactMap { WorkerSettings.defaults[$0]?.heartbeatTimeout }.min() ?? WorkerSettings().heartbeatTimeout
        return min(3.0, Double(timeout) / 1000 * 0.6)
    }

    static let shortestPause = 0.2

    /// The schedule of `seed` for `nodes` nodes, as long as it is asked for.
    struct Schedule: IteratorProtocol {
        var rng: SplitMix64
        let nodes: Int

        init(seed: UInt64, lane: Int, nodes: Int) {
            rng = SplitMix64(seed: seed ^ 0xC4A0_5EED_0000_0000 ^ UInt64(lane))
            self.nodes = nodes
        }

        mutating func next() -> Step? {
            Step(
                node: Int.random(in: 0..<nodes, using: &rng),
                worker: ArrivalOrderChaos.workers[Int.random(in: 0..<ArrivalOrderChaos.workers.count, using: &rng)],
                seconds: Double.random(in: ArrivalOrderChaos.shortestPause...ArrivalOrderChaos.longestPause, using: &rng),
                gap: Double.random(in: 0...0.5, using: &rng))
        }
    }

    /// Each node's supervisor PID, by node index (a node stopped and started again has a new one).
    private let supervisors: Mutex<[Int32]>
    private let nodes: Int
    private let seed: UInt64
    private let stopped = Atomic<Bool>(false)
    private let finished = Mutex<Int>(0)
    /// Workers held back now: the other lane leaves them alone (two pauses back to back could outlast the
    /// heartbeat timeout).
    private let held = Mutex<Set<Int32>>([])
    /// When each worker paused before may be paused again: a worker resumed gets a heartbeat's time (a
    /// quarter of its timeout) and a margin to send one, so that two pauses of one worker with a short gap
    /// (one lane's, back to back) never add up to a silence the supervisor takes for a hang. (Seed 1727782104
    /// paused node 3's broker 1.95 s, resumed it for 40 ms, then paused it 2.20 s: killed as unresponsive.)
    private let restsUntil = Mutex<[Int32: Date]>([:])
    static var rest: Double {
        let timeout = workers.compactMap { WorkerSettings.defaults[$0]?.heartbeatTimeout }.max() ?? WorkerSettings().heartbeatTimeout
        return Double(timeout) / 1000 / 4 + 0.75
    }
    private let entries = Mutex<[String]>([])
    private let started = Date()

    private let lanes: Int

    /// `supervisors`: each node's supervisor PID, by node index.
    init(seed: UInt64, supervisors: [Int32], lanes: Int = 2) {
        self.seed = seed
        self.supervisors = Mutex(supervisors)
        nodes = supervisors.count
        self.lanes = lanes
    }

    /// Node `node` runs under a new supervisor now (it was stopped and started again).
    func replaced(node: Int, supervisor: Int32) {
        supervisors.withLock { $0[node] = supervisor }
    }

    /// Starts pausing and resuming, a thread a lane, until `stop()`.
    func start() {
        note(
            "chaos seed \(seed): \(lanes) lanes of pauses of \(Self.workers.map(\.rawValue)) for \(Self.shortestPause)–\(String(format: "%.2f", Self.longestPause)) s"
        )
        for lane in 0..<lanes {
            Thread { [self] in
                var schedule = Schedule(seed: seed, lane: lane, nodes: nodes)
                while !stopped.load(ordering: .relaxed), let step = schedule.next() {
                    run(step, lane: lane)
                    sleep(step.gap)
                }
                finished.withLock { $0 += 1 }
            }.start()
        }
    }

    /// Stops after the pause under way (which is cut short) and waits until every paused worker runs again;
    /// returns the log of what was done.
    @discardableResult
    func stop() -> [String] {
        stopped.store(true, ordering: .relaxed)
        _ = eventually(timeout: 10) { finished.withLock { $0 } == lanes }
        return log
    }

    var log: [String] { entries.withLock { $0 } }

    /// How many pauses were made.
    var pauses: Int { log.filter { $0.contains("SIGSTOP") }.count }

    private func run(_ step: Step, lane: Int) {
        guard let pid = NodeUnderTest.pid(of: step.worker, supervisor: supervisors.withLock { $0[step.node] }) else {
            note("lane \(lane): skip \(step): no \(step.worker.rawValue) running (being replaced)")
            return
        }
        if let until = restsUntil.withLock({ $0[pid] }), until > Date() {
            note("lane \(lane): skip \(step): it rests after its last pause")
            return
        }
        guard held.withLock({ $0.insert(pid).inserted }) else {
            note("lane \(lane): skip \(step): the other lane holds it back")
            return
        }
        defer {
            restsUntil.withLock { $0[pid] = Date().addingTimeInterval(Self.rest) }
            held.withLock { _ = $0.remove(pid) }
        }
        guard kill(pid, SIGSTOP) == 0 else {
            note("lane \(lane): skip \(step): SIGSTOP to \(pid) failed, errno \(errno)")
            return
        }
        note("lane \(lane): SIGSTOP \(step) (pid \(pid))")
        sleep(step.seconds)
        kill(pid, SIGCONT)
        note("lane \(lane): SIGCONT node \(step.node + 1) \(step.worker.rawValue)")
    }

    /// Sleeps `seconds`, less if the chaos is stopped meanwhile.
    private func sleep(_ seconds: Double) {
        let until = Date().addingTimeInterval(seconds)
        while Date() < until && !stopped.load(ordering: .relaxed) { Thread.sleep(forTimeInterval: min(0.05, max(0, until.timeIntervalSinceNow))) }
    }

    private func note(_ text: String) {
        let line = String(format: "+%.2fs ", Date().timeIntervalSince(started)) + text
        entries.withLock { $0.append(line) }
        print("workload chaos: \(line)")
    }
}
