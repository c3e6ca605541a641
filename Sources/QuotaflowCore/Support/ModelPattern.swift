/// Model names with simple `*` wildcards: `gpt-4.1*`, `claude-*-4`, `*`.
public enum ModelPattern {
    public static func matches(pattern: String, _ model: String) -> Bool {
        if !pattern.utf8.contains(UInt8(ascii: "*")) { return pattern == model }
        var pattern = pattern
        var model = model
        return pattern.withUTF8 { p in model.withUTF8 { m in glob(p, m) } }
    }

    /// Iterative glob match with backtracking to the last star, over UTF-8 bytes without copying.
    static func glob(_ p: UnsafeBufferPointer<UInt8>, _ m: UnsafeBufferPointer<UInt8>) -> Bool {
        var pi = 0
        var mi = 0
        var star = -1
        var mark = 0
        while mi < m.count {
            if pi < p.count, p[pi] != UInt8(ascii: "*"), p[pi] == m[mi] {
                pi += 1
                mi += 1
            } else if pi < p.count, p[pi] == UInt8(ascii: "*") {
                star = pi
                mark = mi
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                mi = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }

    /// Whether `model` passes an allow-list; an empty list allows everything.
    public static func allowed(_ model: String, by list: [String]) -> Bool {
        list.isEmpty || list.contains { matches(pattern: $0, model) }
    }

    /// A valid pattern: 1...200 printable characters without spaces.
    public static func isValid(_ pattern: String) -> Bool {
        !pattern.isEmpty && pattern.utf8.count <= 200 && pattern.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }
}
