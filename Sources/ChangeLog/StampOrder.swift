/// Last-writer-wins order in SQL: `ChangeEvent.supersedes` — (stamp, writer) compared as unsigned 64-bit
/// numbers, stored as their signed bit patterns. One expression for every place that decides by stamp in
/// SQL (the applier's claim of a row clock, the restore's merge of live row versions), so they cannot
/// break ties differently.
public enum StampOrder {
    /// SQL true when (`stamp`, `writer`) is strictly later than (`otherStamp`, `otherWriter`); each argument
    /// is an SQL expression (a column reference) holding the signed bit pattern.
    public static func supersedes(stamp: String, writer: String, over otherStamp: String, _ otherWriter: String) -> String {
        "CASE WHEN \(stamp) = \(otherStamp) THEN \(unsignedGreater(writer, otherWriter)) ELSE \(unsignedGreater(stamp, otherStamp)) END"
    }

    /// `a > b` for unsigned 64-bit numbers held as their signed bit patterns: the ones with the top bit set
    /// (negative here) are the larger ones.
    static func unsignedGreater(_ a: String, _ b: String) -> String {
        "(CASE WHEN (\(a) < 0) = (\(b) < 0) THEN \(a) > \(b) ELSE \(a) < 0 END)"
    }
}
