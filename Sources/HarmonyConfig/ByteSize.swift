/// Sizes such as `memory_limit = "512MiB"`: an integer (bytes) or a string with a unit.
enum ByteSize {
    private static let units: [(suffix: String, factor: UInt64)] = [
        ("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("tib", 1 << 40),
        ("kb", 1000), ("mb", 1_000_000), ("gb", 1_000_000_000), ("tb", 1_000_000_000_000),
        ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("t", 1 << 40), ("b", 1),
    ]

    /// nil when `text` is not a size.
    static func parse(_ text: String) -> UInt64? {
        let lowered = text.lowercased().filter { $0 != " " && $0 != "_" }
        for (suffix, factor) in units where lowered.hasSuffix(suffix) {
            guard let number = UInt64(lowered.dropLast(suffix.count)) else { return nil }
            let (product, overflow) = number.multipliedReportingOverflow(by: factor)
            return overflow ? nil : product
        }
        return UInt64(lowered)
    }

    static func format(_ bytes: UInt64) -> String {
        if bytes >= 1 << 30 && bytes % (1 << 30) == 0 { return "\(bytes >> 30) GiB" }
        if bytes >= 1 << 20 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 10 { return "\(bytes >> 10) KiB" }
        return "\(bytes) B"
    }
}
