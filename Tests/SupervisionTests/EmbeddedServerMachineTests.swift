import Testing

@testable import Supervision

/// The embedded server's handling: the port every restart keeps, readiness from the ports file, the liveness
/// probe and what its answers mean, and the disks.
@Suite struct EmbeddedServerMachineTests {
    typealias Machine = EmbeddedServerMachine
    static let store = "/var/lib/db/nats/node-1"
    static let database = DiskSpaceWatch.Place(.database, path: "/var/lib/db")
    static let monitoring = Machine.Address(host: "127.0.0.1", port: 8222)

    /// heartbeat_timeout 20 s: probes every 5 s, abandoned after 10 s. Disk watch starts at 0.
    static func machine(places: [DiskSpaceWatch.Place] = [database]) -> Machine {
        Machine(storeDirectory: store, heartbeatTimeout: 20, places: places, now: 0)
    }

    /// A server with pid `pid` started at `now` and ready on `port` (with a monitoring port unless told otherwise).
    static func ready(
        _ machine: inout Machine, pid: Int32 = 100, port: Int = 4222, monitoring: [Machine.Address] = [EmbeddedServerMachineTests.monitoring],
        now: Double = 0
    ) {
        _ = machine.handle(.starting, now: now)
        _ = machine.handle(.spawned(pid: pid), now: now)
        _ = machine.handle(.portsFile(pid: pid, clientPort: port, monitoring: monitoring), now: now)
    }

    static func answer(_ body: String) -> Machine.ProbeResult {
        .answered(Array("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n\(body)".utf8))
    }

    static func reports(_ actions: [Machine.Action]) -> [Machine.Report] {
        actions.compactMap { if case .report(let report) = $0 { report } else { nil } }
    }

    // MARK: ports

    @Test func theFirstStartListensOnTheConfiguredPort() {
        var machine = Self.machine()
        #expect(machine.handle(.starting, now: 0) == [.writeConfiguration(clientPort: nil)])
    }

    /// The broker and the other workers keep the URL they were given while the server is replaced.
    @Test func everyRestartListensOnTheClientPortTheFirstServerGot() {
        var machine = Self.machine()
        Self.ready(&machine, pid: 100, port: 40123)
        _ = machine.handle(.exited(pid: 100), now: 5)
        #expect(machine.handle(.starting, now: 6) == [.writeConfiguration(clientPort: 40123)])
        #expect(machine.pinnedClientPort == 40123)
    }

    @Test func aServerThatExitsBeforeItListensPinsNoPort() {
        var machine = Self.machine()
        _ = machine.handle(.starting, now: 0)
        _ = machine.handle(.spawned(pid: 100), now: 0)
        _ = machine.handle(.exited(pid: 100), now: 1)
        #expect(machine.handle(.starting, now: 2) == [.writeConfiguration(clientPort: nil)])
    }

    /// Untrusted bytes: a ports file naming port 0 (or any port outside 1…65535) has not said where the server listens.
    @Test func aClientPortOutsideTheValidRangeIsNotTakenAsReadiness() {
        var machine = Self.machine()
        _ = machine.handle(.spawned(pid: 100), now: 0)
        for port in [0, -1, 65536] {
            #expect(machine.handle(.portsFile(pid: 100, clientPort: port, monitoring: [Self.monitoring]), now: 0).isEmpty)
        }
        #expect(machine.pinnedClientPort == nil)
    }

    // MARK: readiness

    @Test func aStartedServerIsReadyOnceItsPortsFileNamesItsClientPort() {
        var machine = Self.machine()
        _ = machine.handle(.spawned(pid: 100), now: 0)
        #expect(machine.handle(.tick, now: 0).contains(.readPortsFile(pid: 100)))
        #expect(machine.handle(.portsFile(pid: 100, clientPort: nil, monitoring: []), now: 0).isEmpty, "not written yet")
        #expect(machine.nextDeadline == Machine.portsFileInterval, "read again shortly")
        #expect(!machine.handle(.tick, now: 0.01).contains(.readPortsFile(pid: 100)))
        #expect(machine.handle(.tick, now: 0.02).contains(.readPortsFile(pid: 100)))
        let actions = machine.handle(.portsFile(pid: 100, clientPort: 4222, monitoring: [Self.monitoring]), now: 0.02)
        #expect(actions == [.serverReady(pid: 100, clientPort: 4222, monitoring: Self.monitoring), .startProbe(pid: 100, address: Self.monitoring)])
        #expect(!machine.handle(.tick, now: 0.1).contains(.readPortsFile(pid: 100)), "read no more once ready")
    }

    /// The file is named after the server's pid: an earlier server's never stands for the running one's.
    @Test func anotherServersPortsFileIsIgnored() {
        var machine = Self.machine()
        _ = machine.handle(.spawned(pid: 101), now: 0)
        #expect(machine.handle(.portsFile(pid: 100, clientPort: 4222, monitoring: []), now: 0).isEmpty)
        #expect(machine.pinnedClientPort == nil)
    }

    @Test func aServerThatExitedIsNoLongerWaitedFor() {
        var machine = Self.machine()
        _ = machine.handle(.spawned(pid: 100), now: 0)
        _ = machine.handle(.exited(pid: 100), now: 0.5)
        #expect(!machine.handle(.tick, now: 0.5).contains(.readPortsFile(pid: 100)))
        #expect(machine.handle(.portsFile(pid: 100, clientPort: 4222, monitoring: []), now: 0.5).isEmpty)
    }

    // MARK: readiness in a cluster: current with the meta leader

    static func health(_ status: String, _ body: String) -> Machine.ProbeResult {
        .answered(Array("HTTP/1.0 \(status)\r\nContent-Type: application/json\r\n\r\n\(body)".utf8))
    }

    static let noLeader = health("503 Service Unavailable", #"{"status":"unavailable","error":"JetStream has not established contact with a meta leader"}"#)
    static let notCurrent = health("503 Service Unavailable", #"{"status":"unavailable","error":"JetStream is not current with the meta leader"}"#)
    static let current = health("200 OK", #"{"status":"ok"}"#)

    /// The upgrade's loss (2026-12-07): a server started without cluster state said ready while its cluster had no
    /// meta leader; the next switch then left a majority without the state. In a cluster the first server is ready
    /// once it is current with the meta leader, asked every `metaCheckInterval`.
    @Test func inAClusterTheFirstServerIsReadyOnceCurrentWithTheMetaLeader() {
        var machine = Machine(storeDirectory: Self.store, heartbeatTimeout: 20, places: [], now: 0, awaitsMetaCurrency: true)
        _ = machine.handle(.starting, now: 0)
        _ = machine.handle(.spawned(pid: 100), now: 0)
        #expect(
            machine.handle(.portsFile(pid: 100, clientPort: 4222, monitoring: [Self.monitoring]), now: 0)
                == [.checkMetaCurrency(pid: 100, address: Self.monitoring)], "not ready: its meta group is asked first")
        #expect(machine.pinnedClientPort == 4222)
        #expect(machine.handle(.tick, now: 0.3).isEmpty, "one check at a time")
        #expect(
            machine.handle(.metaCurrencyChecked(pid: 100, Self.noLeader), now: 0.3)
                == [.report(.waitingForMetaLeader(reason: "JetStream has not established contact with a meta leader"))])
        #expect(machine.nextDeadline == 0.3 + Machine.metaCheckInterval)
        #expect(machine.handle(.tick, now: 0.5).isEmpty, "asked again after metaCheckInterval")
        #expect(machine.handle(.tick, now: 0.8) == [.checkMetaCurrency(pid: 100, address: Self.monitoring)])
        #expect(machine.handle(.metaCurrencyChecked(pid: 100, Self.noLeader), now: 0.9).isEmpty, "the same reason is said once")
        _ = machine.handle(.tick, now: 1.4)
        #expect(
            machine.handle(.metaCurrencyChecked(pid: 100, Self.notCurrent), now: 1.5)
                == [.report(.waitingForMetaLeader(reason: "JetStream is not current with the meta leader"))])
        _ = machine.handle(.tick, now: 2)
        #expect(
            machine.handle(.metaCurrencyChecked(pid: 100, .failed("connect: refused")), now: 2.1) == [
                .report(.waitingForMetaLeader(reason: "connect: refused"))
            ])
        _ = machine.handle(.tick, now: 2.6)
        #expect(
            machine.handle(.metaCurrencyChecked(pid: 100, Self.current), now: 3)
                == [
                    .report(.metaCurrent(waitedSeconds: 3)), .serverReady(pid: 100, clientPort: 4222, monitoring: Self.monitoring),
                    .startProbe(pid: 100, address: Self.monitoring),
                ])
        #expect(machine.handle(.metaCurrencyChecked(pid: 100, Self.current), now: 3.1).isEmpty, "ready once")
    }

    @Test func anUnansweredMetaCheckIsDroppedAndAskedAgain() {
        var machine = Machine(storeDirectory: Self.store, heartbeatTimeout: 20, places: [], now: 0, awaitsMetaCurrency: true)
        _ = machine.handle(.spawned(pid: 100), now: 0)
        _ = machine.handle(.portsFile(pid: 100, clientPort: 4222, monitoring: [Self.monitoring]), now: 0)
        #expect(machine.nextDeadline == Machine.metaCheckTimeout)
        #expect(machine.handle(.tick, now: Machine.metaCheckTimeout - 0.1).isEmpty)
        #expect(machine.handle(.tick, now: Machine.metaCheckTimeout) == [.dropProbe, .checkMetaCurrency(pid: 100, address: Self.monitoring)])
    }

    /// A restarted server (the workers run, with its pinned port) is ready as before; so is one with no monitoring port,
    /// and every server outside a cluster.
    @Test func restartsServersWithoutMonitoringAndSingleServersAreReadyFromTheirPortsFile() {
        var machine = Machine(storeDirectory: Self.store, heartbeatTimeout: 20, places: [], now: 0, awaitsMetaCurrency: true)
        _ = machine.handle(.spawned(pid: 100), now: 0)
        _ = machine.handle(.portsFile(pid: 100, clientPort: 4222, monitoring: [Self.monitoring]), now: 0)
        _ = machine.handle(.metaCurrencyChecked(pid: 100, Self.current), now: 1)
        _ = machine.handle(.exited(pid: 100), now: 5)
        _ = machine.handle(.spawned(pid: 101), now: 6)
        #expect(
            machine.handle(.portsFile(pid: 101, clientPort: 4222, monitoring: [Self.monitoring]), now: 6).contains(
                .serverReady(pid: 101, clientPort: 4222, monitoring: Self.monitoring)))

        var unmonitored = Machine(storeDirectory: Self.store, heartbeatTimeout: 20, places: [], now: 0, awaitsMetaCurrency: true)
        _ = unmonitored.handle(.spawned(pid: 100), now: 0)
        #expect(
            unmonitored.handle(.portsFile(pid: 100, clientPort: 4222, monitoring: []), now: 0).contains(
                .serverReady(pid: 100, clientPort: 4222, monitoring: nil)))

        var single = Self.machine()
        _ = single.handle(.spawned(pid: 100), now: 0)
        #expect(
            single.handle(.portsFile(pid: 100, clientPort: 4222, monitoring: [Self.monitoring]), now: 0).contains(
                .serverReady(pid: 100, clientPort: 4222, monitoring: Self.monitoring)))
    }

    /// Until a server was ready, a replacement waits for the meta leader too (the workers have not started).
    @Test func aServerReplacingOneThatNeverCaughtUpWaitsToo() {
        var machine = Machine(storeDirectory: Self.store, heartbeatTimeout: 20, places: [], now: 0, awaitsMetaCurrency: true)
        _ = machine.handle(.spawned(pid: 100), now: 0)
        _ = machine.handle(.portsFile(pid: 100, clientPort: 4222, monitoring: [Self.monitoring]), now: 0)
        _ = machine.handle(.exited(pid: 100), now: 1)
        #expect(machine.handle(.starting, now: 2) == [.writeConfiguration(clientPort: 4222)])
        _ = machine.handle(.spawned(pid: 101), now: 2)
        #expect(
            machine.handle(.portsFile(pid: 101, clientPort: 4222, monitoring: [Self.monitoring]), now: 2)
                == [.checkMetaCurrency(pid: 101, address: Self.monitoring)])
    }

    @Test func aCatchingUpServerThatExitsIsNoLongerWaitedFor() {
        var machine = Machine(storeDirectory: Self.store, heartbeatTimeout: 20, places: [], now: 0, awaitsMetaCurrency: true)
        _ = machine.handle(.spawned(pid: 100), now: 0)
        _ = machine.handle(.portsFile(pid: 100, clientPort: 4222, monitoring: [Self.monitoring]), now: 0)
        #expect(machine.handle(.exited(pid: 100), now: 0.1) == [.dropProbe], "its check in flight is dropped")
        #expect(machine.handle(.metaCurrencyChecked(pid: 100, Self.current), now: 0.2).isEmpty)
        #expect(machine.handle(.tick, now: 5).isEmpty)
    }

    /// Bytes from the server's monitoring port: only status 200 with `"status":"ok"` is current.
    @Test func onlyAnOKHealthAnswerIsCurrent() {
        func verdict(_ result: Machine.ProbeResult) -> EmbeddedServerProbe.MetaCurrency {
            guard case .answered(let bytes) = result else { return .behind("") }
            return EmbeddedServerProbe.metaCurrency(response: bytes)
        }
        #expect(verdict(Self.current) == .current)
        #expect(verdict(Self.notCurrent) == .behind("JetStream is not current with the meta leader"))
        #expect(verdict(Self.health("200 OK", #"{"status":"unavailable"}"#)) == .behind("unavailable"))
        #expect(verdict(Self.health("503 Service Unavailable", #"{"status":"ok"}"#)) == .behind("ok"), "the status code counts too")
        #expect(verdict(Self.health("200 OK", "not json")) == .behind("HTTP status 200"))
        #expect(
            verdict(Self.health("503 Service Unavailable", #"{"error":""# + String(repeating: "x", count: 5000) + #""}"#))
                == .behind(String(repeating: "x", count: 200)))
        for garbage in ["", "HTTP/1.0 200 OK\r\nContent-Type: app", "SSH-2.0-OpenSSH\r\n\r\n"] {
            guard case .behind = EmbeddedServerProbe.metaCurrency(response: Array(garbage.utf8)) else {
                Issue.record("garbage counted as current: \(garbage.debugDescription)")
                continue
            }
        }
    }

    // MARK: where the probe goes

    static func address(_ host: String, _ port: Int = 8222) -> Machine.Address { Machine.Address(host: host, port: port) }

    @Test func theProbeGoesToLoopbackWhenTheServerListensThere() {
        #expect(Machine.probeAddress([Self.address("10.0.0.5"), Self.address("127.0.0.1")]) == Self.address("127.0.0.1"))
    }

    @Test func aServerListeningOnEveryInterfaceIsProbedOnLoopback() {
        #expect(Machine.probeAddress([Self.address("0.0.0.0")]) == Self.address("127.0.0.1"))
        #expect(Machine.probeAddress([Self.address("")]) == Self.address("127.0.0.1"))
    }

    /// An operator's `http: "10.0.0.5:8222"` in `nats.server_config`.
    @Test func anOperatorsOwnMonitoringAddressIsProbedThere() {
        #expect(Machine.probeAddress([Self.address("10.0.0.5"), Self.address("10.0.0.6")]) == Self.address("10.0.0.5"))
    }

    /// The probe speaks IPv4; a port outside 1…65535 (untrusted bytes) is no address.
    @Test func aServerWithNoUsableIPv4MonitoringAddressIsNotProbed() {
        #expect(Machine.probeAddress([Self.address("::1"), Self.address("127.0.0.1", 0), Self.address("127.0.0.1", 70000)]) == nil)
        var machine = Self.machine(places: [])
        _ = machine.handle(.spawned(pid: 100), now: 0)
        let actions = machine.handle(.portsFile(pid: 100, clientPort: 4222, monitoring: [Self.address("::1")]), now: 0)
        #expect(actions == [.report(.notProbed), .serverReady(pid: 100, clientPort: 4222, monitoring: nil)])
    }

    // MARK: liveness

    @Test func probesGoFourTimesPerHeartbeatTimeoutOnceReady() {
        var machine = Self.machine()
        Self.ready(&machine)
        _ = machine.handle(.tick, now: 0)
        #expect(machine.handle(.probeFinished(pid: 100, Self.answer("{}")), now: 0.1) == [.lifeSign])
        #expect(machine.nextDeadline == 1, "the disk watch is next")
        _ = machine.handle(.tick, now: 1)
        #expect(machine.nextDeadline == 2)
        for second in 2...4 { _ = machine.handle(.tick, now: Double(second)) }
        #expect(machine.nextDeadline == 5)
        #expect(!machine.handle(.tick, now: 4.9).contains(.startProbe(pid: 100, address: Self.monitoring)))
        #expect(machine.handle(.tick, now: 5).contains(.startProbe(pid: 100, address: Self.monitoring)))
    }

    @Test func anAnswerIsALifeSign() {
        var machine = Self.machine()
        Self.ready(&machine)
        let jsz = #"{"server_id": "N1", "meta_cluster": {"leader": "n2", "cluster_size": 3}, "streams": 1}"#
        #expect(machine.handle(.probeFinished(pid: 100, Self.answer(jsz)), now: 0.1) == [.lifeSign])
    }

    /// nats-server 2.9 disables JetStream when its store runs out of space, and never enables it again: no life
    /// sign, so the supervisor's machine restarts it.
    @Test func jetStreamDisabledIsNoLifeSignAndAnError() {
        var machine = Self.machine()
        Self.ready(&machine)
        let actions = machine.handle(.probeFinished(pid: 100, Self.answer(#"{"disabled": true}"#)), now: 0.1)
        #expect(actions == [.report(.jetStreamDisabled)])
    }

    @Test func aFailedProbeOrAnAnswerThatIsNotHTTPIsNoLifeSign() {
        var machine = Self.machine()
        Self.ready(&machine)
        let failed = machine.handle(.probeFinished(pid: 100, .failed("connect: Connection refused")), now: 0.1)
        #expect(failed == [.report(.probeFailed(address: Self.monitoring, reason: "connect: Connection refused"))])
        _ = machine.handle(.tick, now: 5)
        let garbage = machine.handle(.probeFinished(pid: 100, .answered(Array("SSH-2.0-OpenSSH\r\n\r\n".utf8))), now: 5.1)
        #expect(!garbage.contains(.lifeSign))
        guard case .report(.malformedAnswer) = garbage.first else {
            Issue.record("\(garbage)")
            return
        }
    }

    /// A server that keeps refusing is said once, not every 5 s; its answer afterwards is said once too.
    @Test func aProbeProblemIsReportedOnceInARowAndItsEndOnce() {
        var machine = Self.machine()
        Self.ready(&machine)
        let refused = Machine.ProbeResult.failed("connect: Connection refused")
        #expect(Self.reports(machine.handle(.probeFinished(pid: 100, refused), now: 0.1)).count == 1)
        _ = machine.handle(.tick, now: 5)
        #expect(Self.reports(machine.handle(.probeFinished(pid: 100, refused), now: 5.1)).isEmpty)
        _ = machine.handle(.tick, now: 10)
        #expect(machine.handle(.probeFinished(pid: 100, Self.answer("{}")), now: 10.1) == [.report(.answersAgain), .lifeSign])
        _ = machine.handle(.tick, now: 15)
        #expect(machine.handle(.probeFinished(pid: 100, Self.answer("{}")), now: 15.1) == [.lifeSign])
    }

    /// Unanswered for half the heartbeat timeout: dropped, said, the store's free space measured (a full disk is
    /// what wedges nats-server 2.9), and another probe goes out.
    @Test func anUnansweredProbeIsDroppedReportedAndTheStoreMeasured() {
        var machine = Self.machine(places: [])
        Self.ready(&machine)
        #expect(machine.nextDeadline == 10)
        #expect(machine.handle(.tick, now: 9.9).isEmpty)
        let actions = machine.handle(.tick, now: 10)
        #expect(actions == [.dropProbe, .report(.unanswered(timeout: 10)), .measureStoreSpace(.unanswered), .startProbe(pid: 100, address: Self.monitoring)])
        let again = machine.handle(.tick, now: 20)
        #expect(again == [.dropProbe, .measureStoreSpace(.unanswered), .startProbe(pid: 100, address: Self.monitoring)], "said once in a row")
    }

    @Test func aServerWithoutAMonitoringPortIsNotProbedAndIsAliveWhileItRuns() {
        var machine = Self.machine(places: [])
        _ = machine.handle(.spawned(pid: 100), now: 0)
        let actions = machine.handle(.portsFile(pid: 100, clientPort: 4222, monitoring: []), now: 0)
        #expect(actions == [.report(.notProbed), .serverReady(pid: 100, clientPort: 4222, monitoring: nil)])
        #expect(machine.handle(.tick, now: 30) == [.lifeSign])
    }

    /// An answer counts only for the server it was sent to.
    @Test func aProbeOfAServerThatExitedCountsForNothing() {
        var machine = Self.machine()
        Self.ready(&machine)
        #expect(machine.handle(.exited(pid: 100), now: 1) == [.dropProbe])
        #expect(machine.handle(.probeFinished(pid: 100, Self.answer("{}")), now: 1).isEmpty)
        Self.ready(&machine, pid: 101, now: 2)
        #expect(machine.handle(.probeFinished(pid: 100, Self.answer("{}")), now: 2.1).isEmpty)
        #expect(machine.handle(.probeFinished(pid: 101, Self.answer("{}")), now: 2.1) == [.lifeSign])
    }

    @Test func aReplacementServerIsProbedAtOnceOnItsOwnMonitoringPort() {
        var machine = Self.machine()
        Self.ready(&machine, pid: 100)
        _ = machine.handle(.exited(pid: 100), now: 1)
        _ = machine.handle(.starting, now: 2)
        _ = machine.handle(.spawned(pid: 101), now: 2)
        let other = Machine.Address(host: "127.0.0.1", port: 9333)
        let actions = machine.handle(.portsFile(pid: 101, clientPort: 4222, monitoring: [other]), now: 2)
        #expect(actions == [.serverReady(pid: 101, clientPort: 4222, monitoring: other), .startProbe(pid: 101, address: other)])
    }

    // MARK: disks

    @Test func killingTheReadyServerMeasuresItsStore() {
        var machine = Self.machine()
        _ = machine.handle(.spawned(pid: 100), now: 0)
        #expect(machine.handle(.killing(pid: 100), now: 0).isEmpty, "not ready: nothing wedged it")
        _ = machine.handle(.portsFile(pid: 100, clientPort: 4222, monitoring: [Self.monitoring]), now: 0)
        #expect(machine.handle(.killing(pid: 100), now: 20) == [.measureStoreSpace(.killing)])
        #expect(machine.handle(.killing(pid: 200), now: 20).isEmpty, "a worker")
    }

    @Test func aStoreWithLessThanOneMiBFreeIsFull() {
        var machine = Self.machine()
        let full = machine.handle(.storeSpace(.killing, freeBytes: (1 << 20) - 1), now: 0)
        #expect(full == [.report(.storeSpace(.killing, path: Self.store, freeBytes: (1 << 20) - 1, full: true))])
        let roomy = machine.handle(.storeSpace(.unanswered, freeBytes: 1 << 20), now: 0)
        #expect(roomy == [.report(.storeSpace(.unanswered, path: Self.store, freeBytes: 1 << 20, full: false))])
    }

    @Test func everyWatchedPlaceIsMeasuredOncePerSecond() {
        let store = DiskSpaceWatch.Place(.store, path: Self.store)
        var machine = Self.machine(places: [Self.database, store])
        #expect(machine.handle(.tick, now: 0) == [.measureFreeSpace(Self.database), .measureFreeSpace(store)])
        #expect(machine.handle(.tick, now: 0.5).isEmpty)
        #expect(machine.nextDeadline == 1)
        #expect(machine.handle(.tick, now: 1) == [.measureFreeSpace(Self.database), .measureFreeSpace(store)])
    }

    @Test func aFullDiskIsReportedOnceAndItsRecoveryOnce() {
        var machine = Self.machine()
        let readings: [UInt64] = [5 << 20, 4096, 0, (1 << 20) + 1, 2 << 20, 3 << 20]
        let reports = readings.map { Self.reports(machine.handle(.freeSpace(Self.database, freeBytes: $0), now: 0)) }
        #expect(
            reports == [
                [], [.disk(.full(.database, path: "/var/lib/db", freeBytes: 4096))], [], [],
                [.disk(.recovered(.database, path: "/var/lib/db", freeBytes: 2 << 20))], [],
            ])
    }

    @Test func theDatabaseAndTheStoreOnOneFilesystemAreOnePlace() {
        let one = Machine.watchedPlaces(databaseDirectory: "/data", storeDirectory: "/data/nats/n1", sameFileSystem: true)
        #expect(one == [DiskSpaceWatch.Place(.databaseAndStore, path: "/data")])
        let two = Machine.watchedPlaces(databaseDirectory: "/data", storeDirectory: "/store/n1", sameFileSystem: false)
        #expect(two == [DiskSpaceWatch.Place(.database, path: "/data"), DiskSpaceWatch.Place(.store, path: "/store/n1")])
        let external = Machine.watchedPlaces(databaseDirectory: "/data", storeDirectory: nil, sameFileSystem: true)
        #expect(external == [DiskSpaceWatch.Place(.database, path: "/data")])
    }
}
