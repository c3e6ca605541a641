/// Byte searches over a JSON document that find members at any depth without parsing it.
///
/// A key counts when its opening quote is not escaped (text inside a string value that merely
/// spells `"key":` is escaped as `\"key\":`) and a colon follows it: enough to decide cost-raising
/// features conservatively, since a false positive only raises a reservation.
public enum JSONBytes {
    /// Whether some object in `bytes` has a member named `key`.
    public static func containsKey(_ key: String, in bytes: [UInt8]) -> Bool {
        valueStarts(of: key, in: bytes).first != nil
    }

    /// Whether some object in `bytes` has `key` with the string value `value`.
    public static func containsMember(_ key: String, string value: String, in bytes: [UInt8]) -> Bool {
        let literal = Array("\"\(value)\"".utf8)
        for start in valueStarts(of: key, in: bytes) where start + literal.count <= bytes.count {
            if bytes[start..<(start + literal.count)].elementsEqual(literal) { return true }
        }
        return false
    }

    /// Offsets where the value of each `"key":` begins.
    static func valueStarts(of key: String, in bytes: [UInt8]) -> [Int] {
        let needle = Array("\"\(key)\"".utf8)
        guard needle.count <= bytes.count else { return [] }
        var out: [Int] = []
        var i = 0
        let last = bytes.count - needle.count
        while i <= last {
            if bytes[i] == needle[0], i == 0 || bytes[i - 1] != UInt8(ascii: "\\"), bytes[i..<(i + needle.count)].elementsEqual(needle) {
                var j = i + needle.count
                while j < bytes.count, isSpace(bytes[j]) { j += 1 }
                if j < bytes.count, bytes[j] == UInt8(ascii: ":") {
                    j += 1
                    while j < bytes.count, isSpace(bytes[j]) { j += 1 }
                    out.append(j)
                }
                i = j
                continue
            }
            i += 1
        }
        return out
    }

    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }
}
