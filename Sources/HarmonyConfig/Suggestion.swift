/// "Did you mean …?" for unknown keys: the closest known key by edit distance, if it is close enough.
enum Suggestion {
    static func closest(to key: String, among candidates: [String]) -> String? {
        let limit = max(2, key.count / 4)
        var best: (String, Int)?
        for candidate in candidates {
            let distance = editDistance(Array(key), Array(candidate))
            if distance <= limit, distance < (best?.1 ?? .max) { best = (candidate, distance) }
        }
        return best?.0
    }

    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
