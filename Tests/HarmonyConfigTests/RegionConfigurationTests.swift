import Foundation
import TestSupport
import Testing

@testable import HarmonyConfig

extension ConfigurationTests {
    /// `nats.region`/`nats.regions`: names a JetStream domain, a cluster and streams can carry; embedded only.
    @Test func regionsAreCheckedNames() throws {
        let base = "db_path = \"\(database)\"\n[nats]\n"
        let loaded = try load(base + "region = \"eu-west_1\"\nregions = [\"eu-west_1\", \"us\"]\n").configuration
        #expect(loaded.nats.region == "eu-west_1" && loaded.otherRegions == ["us"])
        #expect(loaded.regionalStreamName(shard: 2, region: "us") == "harmonylite-changes-2-us")
        #expect(loadError(base + "region = \"a.b\"\n")?.key == "nats.region")
        #expect(loadError(base + "region = \"a\"\nregions = [\"a\", \"b c\"]\n")?.key == "nats.regions")
        #expect(loadError(base + "regions = [\"a\", \"b\"]\n")?.key == "nats.regions")
        #expect(loadError(base + "urls = [\"nats://n1:4222\"]\nregion = \"a\"\n")?.key == "nats.region")
        #expect(loadError(base + "region = \"\(String(repeating: "x", count: 33))\"\n")?.key == "nats.region")
    }
}
