import Foundation
import Operability
import Testing

@Suite struct NATSOverviewTests {
    /// nats-server 2.9's answers, trimmed: two routes, a meta leader with its peers, one leaf connection.
    @Test func showsRoutesPeersAndLeafs() {
        let routez = #"{"num_routes":2,"routes":[{"rid":8,"ip":"127.0.0.1","port":52924},{"rid":9,"ip":"10.0.0.3","port":6222}]}"#
        let jsz =
            #"{"config":{"domain":"a"},"meta_cluster":{"name":"e-harmonylite-a","leader":"harmonylite-node-1","cluster_size":3,"replicas":[{"name":"harmonylite-node-2","current":true},{"name":"harmonylite-node-3","current":false,"offline":true}]}}"#
        let leafz = #"{"leafnodes":1,"leafs":[{"ip":"127.0.0.1","port":7422}]}"#
        let overview = NATSOverview(monitoringURL: "http://127.0.0.1:8222", routez: Array(routez.utf8), jsz: Array(jsz.utf8), leafz: Array(leafz.utf8))
        #expect(
            overview.lines == [
                "NATS monitoring: http://127.0.0.1:8222",
                "NATS routes:     127.0.0.1:52924, 10.0.0.3:6222",
                "NATS leafnodes:  127.0.0.1:7422",
                "JetStream:       domain a, cluster e-harmonylite-a, 3 servers, leader harmonylite-node-1, peers harmonylite-node-2 (current), harmonylite-node-3 (offline)",
            ])
    }

    /// No answer, or one that is not JSON, says so rather than inventing a topology.
    @Test func unknownWhenNotAnswered() {
        let overview = NATSOverview(monitoringURL: "http://127.0.0.1:1", routez: nil, jsz: Array("<html>".utf8), leafz: nil)
        #expect(
            overview.lines == [
                "NATS monitoring: http://127.0.0.1:1", "NATS routes:     unknown (no answer from /routez)", "JetStream:       unknown (no answer from /jsz)",
            ])
    }
}
