/// The name a capturer gives each message it publishes (header `HarmonyLite-Msg-Id`):
/// `<node>.<incarnation>.<shard>.<first change id>-<last change id>`. The incarnation is the database's
/// (`__harmonylite___meta`, made at its first installation): a snapshot restore replaces the database's
/// content, meta table included, so a restored database has a new one.
///
/// It lets a node recognize, without decoding a message, the messages it captured from the very database it
/// runs on now: every row such a message carries was read from this database, so the database holds that
/// version or a later one (`isHeld`). Its own messages from before a restore (another incarnation) are not
/// recognized, and are decided row by row by their stamps, as before: a restored node still takes back its
/// own writes the snapshot lacks.
public struct MessageIdentity: Equatable, Sendable {
    public var node: UInt64
    public var incarnation: String
    public var shard: UInt64
    public var firstChange: Int64
    public var lastChange: Int64

    public init(node: UInt64, incarnation: String, shard: UInt64, firstChange: Int64, lastChange: Int64) {
        self.node = node
        self.incarnation = incarnation
        self.shard = shard
        self.firstChange = firstChange
        self.lastChange = lastChange
    }

    public var text: String { "\(node).\(incarnation).\(shard).\(firstChange)-\(lastChange)" }

    /// The longest text `init(parsing:)` reads: ids are short; a header from the network may be anything.
    public static let maximumLength = 200

    /// Parses a header's value (from the network: any length, any content); nil for anything that is not
    /// exactly the capturer's form (canonical decimal numbers, a non-empty incarnation without dots).
    public init?(parsing text: String) {
        guard text.utf8.count <= Self.maximumLength else { return nil }
        let parts = text.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4, !parts[1].isEmpty else { return nil }
        let range = parts[3].split(separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
        guard range.count == 2, let node = Self.number(parts[0]), let shard = Self.number(parts[2]),
            let first = Self.number(range[0]), let last = Self.number(range[1]),
            let firstChange = Int64(exactly: first), let lastChange = Int64(exactly: last)
        else { return nil }
        self.init(node: node, incarnation: String(decoding: parts[1], as: UTF8.self), shard: shard, firstChange: firstChange, lastChange: lastChange)
    }

    /// Whether a message of this identity, published on a subject that names `publisher` (nil: a subject
    /// that names none), was captured by node `node` from the database of `incarnation`: then that database
    /// holds every row of it (that version or a later one), and applying it can change nothing. The subject
    /// is what proves the publisher (only node `node` may publish on its own subjects); the identity alone
    /// is a header anyone could write.
    public func isHeld(publisher: UInt64?, node: UInt64, incarnation: String) -> Bool {
        publisher == node && self.node == node && self.incarnation == incarnation
    }

    /// How every id of node `node`'s messages from the database of `incarnation` starts: `<node>.<incarnation>.`
    /// (an incarnation holds no dot, so no other incarnation's ids start so).
    public static func heldPrefix(node: UInt64, incarnation: String) -> String { "\(node).\(incarnation)." }

    /// `isHeld` for a message as it arrives, at the cost of one comparison (the applier asks it of every
    /// message): its id (`messageID`) starts with `heldPrefix` of `node` and this database's incarnation,
    /// and its subject names `node` (`publisher`).
    public static func isHeld(messageID: String?, publisher: UInt64?, node: UInt64, heldPrefix: String) -> Bool {
        guard publisher == node, let messageID, messageID.utf8.count <= maximumLength else { return false }
        return messageID.utf8.starts(with: heldPrefix.utf8)
    }

    /// Canonical decimal (digits only, no leading zero), within UInt64.
    private static func number(_ digits: Substring.UTF8View) -> UInt64? {
        guard !digits.isEmpty, digits.count <= 20, digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            digits.count == 1 || digits.first != UInt8(ascii: "0")
        else { return nil }
        return UInt64(String(decoding: digits, as: UTF8.self))
    }
}
