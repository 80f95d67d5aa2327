import BrokerCore
import HarmonyConfig
import Logging
import NATSClient
import WorkerRuntime

#if canImport(Glibc)
import Glibc
#endif

/// The I/O of `NodeClaim`: reads, creates, renews and deletes this node's key in the claims bucket. The
/// broker asks `holdClaim` before it prepares the streams (and so before any consumer is touched) until it
/// says true, renews with `renewIfDue`, and releases on a clean stop.
final class NodeClaimKeeper {
    private var claim: NodeClaim
    /// The same id's claim in each other region's claims bucket (`nats.regions`), read across the leaf
    /// connections (`$JS.<region>.API`): node ids are unique across regions, each bucket is its region's.
    private var otherRegions: [(region: String, claim: NodeClaim)]
    /// Since when each other region has not answered, and whether that was said.
    private var unreachableSince: [String: Double] = [:]
    private var unreachableSaid: Set<String> = []
    private let config: Configuration
    private let logger: Logger
    private let report: (String) -> Void
    private var bucket: KeyValueBucket?
    private(set) var held = false
    private var nextRenewal = 0.0
    private var renewalProblem: String?

    init(config: Configuration, logger: Logger, report: @escaping (String) -> Void) {
        var name = [CChar](repeating: 0, count: 256)
        let host = gethostname(&name, name.count) == 0 ? String(cString: name) : "unknown"
        // The supervisor's pid: the same instance across this broker's restarts under it.
        let me = NodeClaim.Holder(instance: "\(host)|\(config.dbPath)|\(getppid())", host: host, databasePath: config.dbPath)
        claim = NodeClaim(nodeID: config.nodeID, me: me, ttl: Double(Configuration.nodeClaimTTLSeconds))
        otherRegions =
            config.nats.isEmbedded
            ? config.otherRegions.map { ($0, NodeClaim(nodeID: config.nodeID, me: me, ttl: Double(Configuration.nodeClaimTTLSeconds))) } : []
        self.config = config
        self.logger = logger
        self.report = report
    }

    private var key: String { Configuration.nodeClaimKey(config.nodeID) }

    /// The broker's streams wait for the claim: this reason is not announced (the claim says its own wait).
    static let pending = "this node id's claim is not held yet"

    /// One step towards holding the claim; true once held. Throws `WorkerExit.refused` when another running
    /// node holds this id, and NATS errors (tried again by the caller).
    func holdClaim(on connection: NATSConnection, now: Double) throws -> Bool {
        if held { return true }
        guard try otherRegionsClear(connection, now: now) else { return false }
        let bucket = try openBucket(connection)
        let current = try bucket.entry(key).map { (holder: NodeClaim.Holder(decoding: $0.value), revision: $0.revision) }
        switch claim.read(current, now: now) {
        case .create:
            guard try bucket.create(key, claim.me.encoded) else { return false }  // taken meanwhile: read again
        case .takeOver:
            try bucket.put(key, claim.me.encoded)
        case .wait(let wait):
            if let wait {
                logger.warning("\(wait.message)", metadata: wait.metadata.mapValues { .string($0) })
                report(wait.statusLine)
            }
            return false
        case .refuse(let why):
            throw WorkerExit.refused(why)
        }
        held = true
        nextRenewal = now + claim.renewInterval
        logger.info(
            "claimed the node id in the cluster", metadata: ["node_id": "\(config.nodeID)", "bucket": "\(config.nodeClaimsBucket)", "host": "\(claim.me.host)"])
        return true
    }

    /// True when no other region holds this id. A renewed claim there refuses the start as in one region;
    /// a stale one is waited for; a region that does not answer (its leaf connection not up yet, or down) is
    /// asked again for up to the claims' TTL, then said once and passed over: a region must start while
    /// another is away.
    private func otherRegionsClear(_ connection: NATSConnection, now: Double) throws -> Bool {
        var clear = true
        for index in otherRegions.indices {
            let region = otherRegions[index].region
            let current: (holder: NodeClaim.Holder?, revision: UInt64)?
            do {
                current = try connection.lastMessage(
                    apiPrefix: "$JS.\(region).API", stream: "KV_" + config.nodeClaimsBucket, subject: "$KV.\(config.nodeClaimsBucket).\(key)"
                )
                .flatMap { NodeClaim.remoteEntry(sequence: $0.sequence, headersBase64: $0.headersBase64, dataBase64: $0.dataBase64) }
            } catch {
                let since = unreachableSince[region] ?? now
                unreachableSince[region] = since
                if now - since < claim.ttl {
                    clear = false
                } else if unreachableSaid.insert(region).inserted {
                    logger.warning(
                        "cannot read the node id claims of another region; starting without that check", metadata: ["region": "\(region)", "error": "\(error)"])
                }
                continue
            }
            switch otherRegions[index].claim.read(current, now: now) {
            case .create, .takeOver:
                continue
            case .wait(let wait):
                if let wait {
                    logger.warning("\(wait.message)", metadata: wait.metadata.merging(["region": region]) { $1 }.mapValues { .string($0) })
                    report("region \(region): " + wait.statusLine)
                }
                clear = false
            case .refuse(let why):
                throw WorkerExit.refused("in region \(region), " + why)
            }
        }
        return clear
    }

    /// Renews the held claim when due (a failure is said once, and tried again at the next renewal).
    func renewIfDue(on connection: NATSConnection?, now: Double) {
        guard held, now >= nextRenewal, let bucket else { return }
        nextRenewal = now + claim.renewInterval
        do {
            try bucket.put(key, claim.me.encoded)
            if renewalProblem != nil { logger.info("renewed the node id claim again") }
            renewalProblem = nil
        } catch {
            if renewalProblem == nil { logger.warning("cannot renew the node id claim; trying again", metadata: ["error": "\(error)"]) }
            renewalProblem = "\(error)"
        }
    }

    /// A clean stop of the node gives the id up at once; any other stop leaves the claim (see
    /// `NodeClaim.releases(on:)`): a crash's ages out within the bucket's TTL.
    func release(on stop: NodeClaim.Stop) {
        guard held, let bucket else { return }
        held = false
        guard NodeClaim.releases(on: stop) else {
            logger.info("leaving the node id claim to age out or to this node's next broker", metadata: ["stop": "\(stop)"])
            return
        }
        try? bucket.delete(key)
    }

    private func openBucket(_ connection: NATSConnection) throws -> KeyValueBucket {
        if let bucket { return bucket }
        let opened: KeyValueBucket
        if config.nats.isEmbedded {
            // The supervisor's set-up makes it (the node's user may not): wait for it.
            guard let existing = try KeyValueBucket.existing(connection: connection, name: config.nodeClaimsBucket) else {
                throw ClaimBucketMissing(bucket: config.nodeClaimsBucket)
            }
            opened = existing
        } else {
            opened = try KeyValueBucket.openOrCreate(
                connection: connection, name: config.nodeClaimsBucket,
                creation: .init(
                    description: "HarmonyLite: one running node per node id",
                    ttlSeconds: Configuration.nodeClaimTTLSeconds, replicas: config.replicationLog.effectiveReplicas))
        }
        bucket = opened
        return opened
    }
}

/// The claims bucket is not there yet (the supervisor's set-up makes it): tried again, never a stop.
struct ClaimBucketMissing: Error, CustomStringConvertible {
    var bucket: String
    var description: String { "the node claims bucket \(bucket) does not exist yet" }
}
