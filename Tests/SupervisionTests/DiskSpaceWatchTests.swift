import Testing

@testable import Supervision

@Suite struct DiskSpaceWatchTests {
    static let store = DiskSpaceWatch.Place(.store, path: "/var/lib/nats")
    static let database = DiskSpaceWatch.Place(.database, path: "/var/lib/db")

    @Test func fullAndRecoveredAreSaidOnceEachWithHysteresis() {
        var watch = DiskSpaceWatch(places: [Self.store, Self.database], fullBelow: 1000, now: 0)
        var reports: [DiskSpaceWatch.Report?] = []
        for (place, free) in [
            (Self.store, 5000), (Self.store, 999), (Self.store, 0), (Self.database, 5000), (Self.store, 1500),
            (Self.store, 2000), (Self.store, 3000), (Self.store, 10),
        ] as [(DiskSpaceWatch.Place, UInt64)] {
            reports.append(watch.measured(place, freeBytes: free))
        }
        #expect(
            reports == [
                nil, .full(.store, path: "/var/lib/nats", freeBytes: 999),
                nil,  // said once
                nil,  // each place on its own
                nil,  // not back until twice the line
                .recovered(.store, path: "/var/lib/nats", freeBytes: 2000),
                nil, .full(.store, path: "/var/lib/nats", freeBytes: 10),
            ])
    }

    @Test func measuresOncePerInterval() {
        var watch = DiskSpaceWatch(places: [Self.store], interval: 1, now: 10)
        let answers = [10, 10.5, 11].map { watch.due(now: $0) }
        #expect(answers == [true, false, true])
    }
}
