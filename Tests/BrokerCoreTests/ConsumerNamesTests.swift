import BrokerCore
import Testing

@Suite struct ConsumerNamesTests {
    let node1shard1 = ConsumerNames(node: "harmonylite-node-1", shard: 1)

    @Test func everyCreationGetsItsOwnNameUnderTheNodesShard() {
        let first = node1shard1.name(token: ConsumerNames.token(1))
        let second = node1shard1.name(token: ConsumerNames.token(0xdead_beef_0000_0001))
        #expect(first == "harmonylite-node-1-1-0000000000000001")
        #expect(second == "harmonylite-node-1-1-deadbeef00000001")
        #expect(ConsumerNames.token(.max) == "ffffffffffffffff")
        #expect(node1shard1.isOurs(first) && node1shard1.isOurs(second))
    }

    @Test func theOldFixedNameIsALeftoverToo() {
        #expect(node1shard1.leftovers(among: ["harmonylite-node-1-1", "harmonylite-node-1-2"]) == ["harmonylite-node-1-1"])
    }

    @Test func anotherNodesOrShardsConsumersAreNeverOurs() {
        let token = ConsumerNames.token(42)
        let others = [
            "harmonylite-node-11-1-\(token)", "harmonylite-node-10-1-\(token)", "harmonylite-node-1-11-\(token)",
            "harmonylite-node-1-2-\(token)", "harmonylite-node-11-1", "harmonylite-node-1-11", "harmonylite-node-11",
            "harmonylite-node-2-1-\(token)",
        ]
        #expect(node1shard1.leftovers(among: others).isEmpty)
        // The other way round: node 11's shard 1 does not take node 1's shard 11 (both read "1-1…").
        let node11shard1 = ConsumerNames(node: "harmonylite-node-11", shard: 1)
        #expect(
            node11shard1.leftovers(among: ["harmonylite-node-1-11-\(token)", "harmonylite-node-1-11", "harmonylite-node-11-1-\(token)"]) == [
                "harmonylite-node-11-1-\(token)"
            ])
    }

    @Test func namesThatOnlyLookLikeOursAreLeftAlone() {
        let hostile = [
            "", "harmonylite-node-1-1-", "harmonylite-node-1-1-\(ConsumerNames.token(1))0", "harmonylite-node-1-1-000000000000001",
            "harmonylite-node-1-1-000000000000000G", "harmonylite-node-1-1-ABCDEF0000000000", "harmonylite-node-1-1-0000000000000001-x",
            "harmonylite-node-1-1-00000000000000é", "harmonylite-node-1-1-0000-0000-0000-00", "harmonylite-node-1-1 ", "HARMONYLITE-NODE-1-1",
            "xharmonylite-node-1-1-0000000000000001", "harmonylite-node-1-1-1-0000000000000001",
        ]
        #expect(node1shard1.leftovers(among: hostile).isEmpty)
    }

    @Test func theConsumerInUseIsKeptAndTheRestKeepTheirOrder() {
        let names = [ConsumerNames.token(3), ConsumerNames.token(1), ConsumerNames.token(2)].map(node1shard1.name(token:))
        #expect(node1shard1.leftovers(among: names + ["other"], keeping: names[1]) == [names[0], names[2]])
    }

    @Test func freshNamesComeFromThePoolAndAvoidTheNamesInUse() {
        let pool = node1shard1.pool
        #expect(pool.count == Int(ConsumerNames.poolSize) && Set(pool).count == pool.count && pool.allSatisfy(node1shard1.isOurs))
        let inUse = Set(pool.dropLast())
        #expect(node1shard1.fresh(avoiding: inUse, random: 7) == pool.last)
        #expect(node1shard1.fresh(avoiding: Set(pool), random: 7) == nil)
        #expect(node1shard1.fresh(avoiding: [], random: ConsumerNames.poolSize + 3) == pool[3])
    }
}
