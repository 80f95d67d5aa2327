import Foundation
import SnapshotPlanner
import Synchronization

/// Work longer than a heartbeat (a restore, a snapshot upload) on its own thread, so the worker loop keeps
/// heartbeating; the loop polls it for progress lines and the outcome.
final class BackgroundJob: Sendable {
    private let state = Mutex<(lines: [String], outcome: Result<JobReport, JobFailure>?)>(([], nil))

    init(name: String, _ body: @escaping @Sendable (BackgroundJob) throws -> JobReport) {
        let thread = Thread { [self] in
            let outcome: Result<JobReport, JobFailure>
            do { outcome = .success(try body(self)) } catch { outcome = .failure(JobFailure(description: "\(error)")) }
            state.withLock { $0.outcome = outcome }
        }
        thread.name = name
        thread.start()
    }

    /// A line for the log and the status (progress).
    func say(_ line: String) { state.withLock { $0.lines.append(line) } }

    /// Lines said since the last call, and the outcome once the work is over.
    func poll() -> (lines: [String], outcome: Result<JobReport, JobFailure>?) {
        state.withLock { state in
            defer { state.lines.removeAll() }
            return (state.lines, state.outcome)
        }
    }
}
