import Foundation
import Logging
import SnapshotPlanner
import Snapshots
import Synchronization

/// Work longer than a heartbeat (a restore, a snapshot upload) on its own thread, so the worker loop keeps
/// heartbeating; the loop polls it for progress lines and the outcome.
final class BackgroundJob: Sendable {
    struct Line: Sendable {
        var level: Logger.Level
        var note: JobNote
    }

    private let state = Mutex<(lines: [Line], outcome: Result<JobReport, JobFailure>?)>(([], nil))

    init(name: String, _ body: @escaping @Sendable (BackgroundJob) throws -> JobReport) {
        let thread = Thread { [self] in
            let outcome: Result<JobReport, JobFailure>
            do {
                outcome = .success(try body(self))
            } catch let refusal as SnapshotRefusal {
                outcome = .failure(JobFailure(description: "\(refusal)", refusedSnapshot: true))
            } catch let noSpace as RestoreNoSpace {
                outcome = .failure(JobFailure(description: "\(noSpace)", diskFull: true))
            } catch {
                outcome = .failure(JobFailure(description: "\(error)"))
            }
            state.withLock { $0.outcome = outcome }
        }
        thread.name = name
        thread.start()
    }

    /// A line for the log and the status (progress).
    func say(_ note: JobNote) { state.withLock { $0.lines.append(Line(level: .info, note: note)) } }

    /// A line for the log at error level: something a person must know (data this node does not have).
    func sayLoudly(_ note: JobNote) { state.withLock { $0.lines.append(Line(level: .error, note: note)) } }

    /// Lines said since the last call, and the outcome once the work is over.
    func poll() -> (lines: [Line], outcome: Result<JobReport, JobFailure>?) {
        state.withLock { state in
            defer { state.lines.removeAll() }
            return (state.lines, state.outcome)
        }
    }
}
