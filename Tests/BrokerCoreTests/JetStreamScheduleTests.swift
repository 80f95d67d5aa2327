import BrokerCore
import IPC
import Testing

@Suite struct JetStreamScheduleTests {
    let cursor = [DataMessage.Position(stream: "s-1", sequence: 41)]

    func schedule(connectRetries: Int = 3, reconnectWaitSeconds: Int = 2, now: Double = 100) -> JetStreamSchedule {
        JetStreamSchedule(
            settings: .init(redactedURLs: "nats://xxxxx@nats.example:4222", connectRetries: connectRetries, reconnectWaitSeconds: reconnectWaitSeconds),
            now: now)
    }

    /// A schedule connected at 100 with the link up and the streams ready.
    func readySchedule() -> JetStreamSchedule {
        var schedule = schedule()
        _ = schedule.tick(now: 100, linkUp: false)
        _ = schedule.connected(now: 100, linkUp: true)
        _ = schedule.streamsPrepared()
        return schedule
    }

    @Test func connectAttemptsAreBoundedAndSpacedThenTheWorkerStopsNamingTheURLs() {
        var schedule = schedule(connectRetries: 3, reconnectWaitSeconds: 2)
        #expect(schedule.nextDeadline == 100)
        #expect(schedule.tick(now: 100, linkUp: false) == [.connect(attempt: 1, of: 3)])
        #expect(schedule.connectFailed(reason: "no servers", now: 100) == [.connectAttemptFailed(attempt: 1, of: 3, reason: "no servers", retryIn: 2)])
        #expect(schedule.nextDeadline == 102)
        #expect(schedule.tick(now: 101.9, linkUp: false).isEmpty)
        #expect(schedule.tick(now: 102, linkUp: false) == [.connect(attempt: 2, of: 3)])
        // An attempt that blocked for 1.5 s: the next one is still `reconnectWait` after it ended.
        _ = schedule.connectFailed(reason: "no servers", now: 103.5)
        #expect(schedule.nextDeadline == 105.5)
        #expect(schedule.tick(now: 105.5, linkUp: false) == [.connect(attempt: 3, of: 3)])

        let actions = schedule.connectFailed(reason: "no servers", now: 105.5)

        #expect(actions == [.giveUp(reason: "could not connect to NATS at nats://xxxxx@nats.example:4222 in 3 attempts (nats.connect_retries): no servers")])
        #expect(schedule.nextDeadline == nil)
        #expect(schedule.tick(now: 200, linkUp: false).isEmpty)
    }

    @Test func zeroConnectRetriesStillMakesOneAttempt() {
        var schedule = schedule(connectRetries: 0, reconnectWaitSeconds: 0)
        #expect(schedule.tick(now: 100, linkUp: false) == [.connect(attempt: 1, of: 1)])
        guard case .giveUp = schedule.connectFailed(reason: "refused", now: 100).first else {
            Issue.record("one failed attempt of one must give up")
            return
        }
    }

    @Test func connectingAnnouncesTheLinkAndPreparesTheStreamsAtOnce() {
        var schedule = schedule()
        _ = schedule.tick(now: 100, linkUp: false)

        #expect(schedule.connected(now: 100, linkUp: true) == [.announceLinkUp, .prepareStreams])
        #expect(schedule.streamsPrepared() == [.reportReady])
        #expect(schedule.streamsReady)
        #expect(schedule.nextDeadline == nil)
    }

    @Test func streamsNotReadyAreCheckedAgainOnADeadlineThatDoesNotMoveWhenReadAgain() {
        var schedule = schedule()
        _ = schedule.tick(now: 100, linkUp: false)
        _ = schedule.connected(now: 100, linkUp: true)
        #expect(schedule.streamsNotReady(reason: "no responders", now: 100) == [.announceWaitingForJetStream(reason: "no responders")])

        let deadline = schedule.nextDeadline
        #expect(deadline == 100.5)
        // Read again, later: still the same value (never "now + 0.5").
        #expect(schedule.nextDeadline == deadline)
        #expect(schedule.tick(now: 100.3, linkUp: true).isEmpty)
        #expect(schedule.nextDeadline == deadline)

        #expect(schedule.tick(now: 100.5, linkUp: true) == [.prepareStreams])
        #expect(schedule.nextDeadline == 101)
        // The same problem again is not announced again; a new one is.
        #expect(schedule.streamsNotReady(reason: "no responders", now: 100.5).isEmpty)
        #expect(schedule.nextDeadline == 101)
        #expect(schedule.tick(now: 101, linkUp: true) == [.prepareStreams])
        // A check that blocked for 2 s: the next one is an interval after it ended, not at once.
        #expect(schedule.streamsNotReady(reason: "timeout", now: 103) == [.announceWaitingForJetStream(reason: "timeout")])
        #expect(schedule.nextDeadline == 103.5)
        // A wait that lasts is said again every 10 s, with how long it lasted.
        #expect(schedule.streamsNotReady(reason: "timeout", now: 112.5).isEmpty)
        #expect(schedule.streamsNotReady(reason: "timeout", now: 113) == [.announceStillWaitingForJetStream(reason: "timeout", seconds: 10)])
        #expect(schedule.streamsNotReady(reason: "timeout", now: 118).isEmpty)
        #expect(schedule.streamsNotReady(reason: "timeout", now: 123.5) == [.announceStillWaitingForJetStream(reason: "timeout", seconds: 20)])
    }

    @Test func whileTheLinkIsDownTheStreamCheckWaitsButItsDeadlineStillMovesOn() {
        var schedule = schedule()
        _ = schedule.tick(now: 100, linkUp: false)
        #expect(schedule.connected(now: 100, linkUp: false) == [])
        #expect(schedule.nextDeadline == 100.5)
        #expect(schedule.tick(now: 100.5, linkUp: false).isEmpty)
        #expect(schedule.nextDeadline == 101)
        #expect(schedule.tick(now: 101, linkUp: true) == [.announceLinkUp, .prepareStreams])
    }

    @Test func theLinkGoingDownAndUpIsAnnouncedOnce() {
        var schedule = readySchedule()
        #expect(schedule.tick(now: 101, linkUp: true).isEmpty)
        #expect(schedule.tick(now: 102, linkUp: false) == [.announceLinkDown])
        #expect(schedule.tick(now: 103, linkUp: false).isEmpty)
        #expect(schedule.tick(now: 104, linkUp: true) == [.announceLinkUp])
    }

    @Test func aSubscriptionBeforeTheStreamsAreReadyStartsTheConsumersOnceTheyAre() {
        var schedule = schedule()
        _ = schedule.tick(now: 100, linkUp: false)
        _ = schedule.connected(now: 100, linkUp: true)

        #expect(schedule.subscribeRequested(after: cursor).isEmpty)
        #expect(schedule.streamsPrepared() == [.reportReady, .startConsumers(after: cursor)])
    }

    @Test func aSubscriptionWithTheStreamsReadyStartsTheConsumersAtOnce() {
        var schedule = readySchedule()
        #expect(schedule.subscribeRequested(after: cursor) == [.startConsumers(after: cursor)])
        schedule.consumersStarted()
        #expect(schedule.pendingSubscription == nil)
        #expect(schedule.nextDeadline == nil)
    }

    @Test func failedConsumerCreationIsRetriedOnADeadline() {
        var schedule = readySchedule()
        _ = schedule.subscribeRequested(after: cursor)

        #expect(schedule.consumersFailed(reason: "stream not found", now: 110) == [.announceConsumersNotStarted(reason: "stream not found", retryIn: 1)])
        #expect(schedule.nextDeadline == 111)
        #expect(schedule.tick(now: 110.9, linkUp: true).isEmpty)
        #expect(schedule.tick(now: 111, linkUp: true) == [.startConsumers(after: cursor)])
        // Not twice for one failure.
        #expect(schedule.tick(now: 111.5, linkUp: true).isEmpty)
        // The same failure again is retried without being announced again.
        #expect(schedule.consumersFailed(reason: "stream not found", now: 111).isEmpty)
        #expect(schedule.nextDeadline == 112)
        #expect(schedule.tick(now: 112, linkUp: true) == [.startConsumers(after: cursor)])
        schedule.consumersStarted()
        #expect(schedule.nextDeadline == nil)
        #expect(schedule.tick(now: 200, linkUp: true).isEmpty)
    }

    @Test func anApplierThatLeavesIsNoLongerSubscribedFor() {
        var schedule = readySchedule()
        _ = schedule.subscribeRequested(after: cursor)
        _ = schedule.consumersFailed(reason: "stream not found", now: 110)

        schedule.applierDisconnected()

        #expect(schedule.nextDeadline == nil)
        #expect(schedule.tick(now: 111, linkUp: true).isEmpty)
        #expect(schedule.consumersFailed(reason: "late", now: 111).isEmpty)
    }
}
