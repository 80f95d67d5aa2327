import Logging
import Testing

@testable import SnapshotPlanner

/// `PlannerReport+Rendering`: every report becomes a constant message with its values as metadata, at the
/// level an operator expects, and the waits set a status line `-status` reads as a wait.
@Suite struct ReportRenderingTests {
    /// Text carried by the samples: never in a message, always in the metadata.
    static let value = "«value»"

    /// One report of every case (every text it carries holds `value`), at its level.
    static let samples: [(report: PlannerReport, level: Logger.Level)] = [
        (.ready(.snapshotsDisabled), .info), (.ready(.replicationOff), .info), (.ready(.noRestoreNeeded), .info),
        (.ready(.restoreDeclined(why: value)), .info), (.ready(.restored(summary: value)), .info), (.ready(.noSnapshotInStore), .info),
        (.waiting(for: .nats, cause: value, retryEvery: 1), .warning), (.waiting(for: .shardStreams, cause: value, retryEvery: 1), .warning),
        (.waiting(for: .store(value), cause: value, retryEvery: 1), .warning), (.waiting(for: .storeForLease(value), cause: value, retryEvery: 1), .warning),
        (.stillWaiting(for: .nats, seconds: 10, cause: value), .warning), (.stillWaiting(for: .store(value), seconds: 20, cause: value), .warning),
        (.restoring(.decided(value)), .info), (.restoring(.bootstrap(.missingDatabase, also: value)), .info),
        (.restoring(.snapshotArrived(waited: 12)), .info), (.restoring(.newerSnapshot(gap: value)), .info), (.restoring(.afterRefusal), .info),
        (.gapUncovered(gap: value, lookEvery: 3, acceptedIn: 57), .warning), (.snapshotRefused(error: value, retryEvery: 30), .error),
        (.waitingForSnapshot(store: value, lookEvery: 3), .warning), (.stillWaitingForSnapshot(seconds: 18, cause: .requestFailed(error: value)), .warning),
        (.leading, .info), (.leaseLost, .info), (.leaseNotRenewed(error: value), .warning), (.leaseUnanswered(error: value), .debug),
        (.leaseHolderStoreUnanswered(error: value, retryIn: 1), .warning), (.saving(.interval), .info),
        (.saving(.snapshotPastStream(stream: value, claimed: .max, last: 10)), .info),
        (.saving(.streamHistory(stream: value, messages: 50, maxEntries: 100)), .info),
        (.saving(.nodeWaiting(request: value)), .info), (.saved(summary: value), .info), (.saveFailed(error: value, retryIn: 5), .error),
        (.registryConnected, .info), (.registryWaitingForNATS(cause: value, retryEvery: 1), .warning), (.schemaRegistered(hash: value, tables: 2), .info),
        (.schemaChanged(hash: value, tables: 2), .info), (.localSchemaUnreadable(error: value), .warning),
        (.registryNotWritten(error: value, retryIn: 5), .warning),
    ]

    /// The case's name; exhaustive, so a new case does not compile here until it has a sample.
    static func name(_ report: PlannerReport) -> String {
        switch report {
        case .ready: "ready"
        case .waiting: "waiting"
        case .stillWaiting: "stillWaiting"
        case .restoring: "restoring"
        case .gapUncovered: "gapUncovered"
        case .snapshotRefused: "snapshotRefused"
        case .waitingForSnapshot: "waitingForSnapshot"
        case .stillWaitingForSnapshot: "stillWaitingForSnapshot"
        case .leading: "leading"
        case .leaseLost: "leaseLost"
        case .leaseNotRenewed: "leaseNotRenewed"
        case .leaseUnanswered: "leaseUnanswered"
        case .leaseHolderStoreUnanswered: "leaseHolderStoreUnanswered"
        case .saving: "saving"
        case .saved: "saved"
        case .saveFailed: "saveFailed"
        case .registryConnected: "registryConnected"
        case .registryWaitingForNATS: "registryWaitingForNATS"
        case .schemaRegistered: "schemaRegistered"
        case .schemaChanged: "schemaChanged"
        case .localSchemaUnreadable: "localSchemaUnreadable"
        case .registryNotWritten: "registryNotWritten"
        }
    }

    @Test func everyCaseHasASample() {
        #expect(Set(Self.samples.map { Self.name($0.report) }).count == 22)
    }

    @Test func messagesAreConstantAndTheValuesAreMetadata() {
        for (report, level) in Self.samples {
            #expect(report.level == level, "\(report)")
            let message = "\(report.message)"
            #expect(!message.isEmpty && !message.contains(Self.value), "a value in the message of \(report): \(message)")
            let carriesText = "\(report)".contains(Self.value)
            #expect(!carriesText || report.metadata.values.contains { "\($0)".contains(Self.value) }, "\(report) loses its value: \(report.metadata)")
        }
        let ready = Self.samples.filter { Self.name($0.report) == "ready" }.map { "\($0.report.message)" }
        #expect(Set(ready).count == ready.count, "each ready reason says which it is")
    }

    @Test func metadataCarriesTheValuesWithTheirUnits() {
        let storeWait = PlannerReport.waiting(for: .store("nats"), cause: "unreachable", retryEvery: 1)
        #expect(storeWait.metadata == ["store": "nats", "cause": "unreachable", "retry_every_s": "1"])
        #expect(PlannerReport.leaseHolderStoreUnanswered(error: "timeout", retryIn: 10.0 / 3).metadata == ["error": "timeout", "retry_in_s": "3.3"])
        let history = PlannerReport.saving(.streamHistory(stream: "hl-1", messages: 50, maxEntries: 100))
        #expect(history.metadata == ["stream": "hl-1", "messages": "50", "max_entries": "100"])
        #expect(PlannerReport.saving(.snapshotPastStream(stream: "hl-1", claimed: .max, last: 10)).metadata["claimed"] == "18446744073709551615")
        let bootstrap = PlannerReport.restoring(.bootstrap(.emptyDatabase(streamMessages: 40), also: nil))
        #expect(bootstrap.metadata["reason"]?.description.contains("took 40 change(s)") == true)
        let registered = PlannerReport.schemaRegistered(hash: String(repeating: "ab", count: 32), tables: 3)
        #expect(registered.metadata == ["schema_hash": "abababababababab", "tables": "3"])
    }

    /// A wait's status line starts as `NodeView.Worker.isWait` reads it; other reports set one only when
    /// the worker's state changed (restoring, saved, not saved).
    @Test func statusLines() {
        let storeWait = PlannerReport.waiting(for: .store("nats"), cause: "unreachable", retryEvery: 1)
        #expect(storeWait.statusLine == "waiting for the snapshot store nats: unreachable")
        let stillStore = PlannerReport.stillWaiting(for: .store("nats"), seconds: 20, cause: "unreachable")
        #expect(stillStore.statusLine == "still waiting for the snapshot store nats (20 s): unreachable")
        let stillSnapshot = PlannerReport.stillWaitingForSnapshot(seconds: 18, cause: .noSnapshotYet)
        #expect(stillSnapshot.statusLine?.hasPrefix("still waiting for a snapshot (18 s): no snapshot in the store yet") == true)
        #expect(PlannerReport.waitingForSnapshot(store: "nats", lookEvery: 3).statusLine?.hasPrefix("waiting for a snapshot (0 s): ") == true)
        #expect(
            PlannerReport.snapshotRefused(error: "unsigned", retryEvery: 30).statusLine?.hasPrefix("waiting for another snapshot: snapshot refused: unsigned")
                == true)

        #expect(PlannerReport.saved(summary: "12 MiB").statusLine == "saved a snapshot: 12 MiB")
        let withStatus = Set(Self.samples.filter { $0.report.statusLine != nil }.map { Self.name($0.report) })
        #expect(
            withStatus == [
                "waiting", "stillWaiting", "gapUncovered", "snapshotRefused", "waitingForSnapshot", "stillWaitingForSnapshot", "saved",
                "saveFailed",
            ])
        for (report, _) in Self.samples where ["waiting", "stillWaiting", "waitingForSnapshot", "stillWaitingForSnapshot"].contains(Self.name(report)) {
            let line = report.statusLine ?? ""
            #expect(line.hasPrefix("waiting for ") || line.hasPrefix("still waiting for "), "\(line)")
        }
    }

    /// A stop or a refusal is the worker's status and exit reason: it says what failed, and a refusal what
    /// the operator must do.
    @Test func stopsAndRefusals() {
        let restoreFailed = PlannerAction.StopReason.restoreFailed(error: "checksum mismatch")
        #expect("\(restoreFailed)" == "snapshot restore failed, the database is unchanged: checksum mismatch")
        #expect("\(PlannerAction.StopReason.restoreUndecidable(error: "no such table"))".hasSuffix(": no such table"))
        #expect("\(PlannerAction.StopReason.gapsNotStored(error: "disk full"))".hasSuffix(": disk full"))
        let refusal = "\(PlannerAction.Refusal.noSnapshotForMissingDatabase(store: "nats"))"
        #expect(
            refusal.contains("(nats) holds no snapshot") && refusal.contains("-save-snapshot") && refusal.contains("PRAGMA user_version;"),
            "names what to do: \(refusal)")
    }

    @Test func readySummaries() {
        let enabled = PlannerHarness.settings(), disabled = PlannerHarness.settings(enabled: false)
        #expect(PlannerReport.ReadyReason.noRestoreNeeded.summary(enabled) == "snapshots enabled (store nats); no restore needed")
        #expect(PlannerReport.ReadyReason.snapshotsDisabled.summary(disabled) == "snapshots disabled; snapshots disabled: none are saved or restored")
        #expect("\(PlannerReport.ReadyReason.restored(summary: "from node 2, taken at T"))" == "restored the snapshot: from node 2, taken at T")
        #expect("\(PlannerReport.ReadyReason.restoreDeclined(why: "the applier is running"))" == "no restore at this start: the applier is running")
    }
}
