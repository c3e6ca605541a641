/// Splits a server-sent-event byte stream into whole events, keeping partial ones for the next chunk.
/// Events end with a blank line (`\n\n` or `\r\n\r\n`).
public struct SSESplitter: Sendable {
    var pending: [UInt8] = []

    public init() {}

    /// Appends `bytes` and returns the complete events (each with its terminating blank line).
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [ArraySlice<UInt8>] {
        pending.append(contentsOf: bytes)
        var events: [ArraySlice<UInt8>] = []
        var start = 0
        var i = 0
        let n = pending.count
        while i < n {
            if pending[i] == 0x0A {
                // "\n\n" or "\n\r\n" ends an event.
                if i + 1 < n, pending[i + 1] == 0x0A {
                    events.append(pending[start..<(i + 2)])
                    i += 2
                    start = i
                    continue
                }
                if i + 2 < n, pending[i + 1] == 0x0D, pending[i + 2] == 0x0A {
                    events.append(pending[start..<(i + 3)])
                    i += 3
                    start = i
                    continue
                }
            }
            i += 1
        }
        if start > 0 {
            let result = events.map { Array($0)[...] }
            pending.removeFirst(start)
            return result
        }
        return events
    }

    /// Whatever is left when the stream ends (an event without its blank line).
    public mutating func flush() -> [UInt8] {
        defer { pending = [] }
        return pending
    }
}

/// Field access on one SSE event.
public enum SSEEvent {
    /// The value of the `event:` field, if any.
    public static func name(_ event: ArraySlice<UInt8>) -> Substring? {
        field("event", in: event)
    }

    /// The concatenated `data:` lines.
    public static func data(_ event: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        var first = true
        for line in lines(event) where line.starts(with: Array("data:".utf8)) {
            var value = line.dropFirst(5)
            if value.first == 0x20 { value = value.dropFirst() }
            if !first { out.append(0x0A) }
            out.append(contentsOf: value)
            first = false
        }
        return out
    }

    static func field(_ name: String, in event: ArraySlice<UInt8>) -> Substring? {
        let prefix = Array((name + ":").utf8)
        for line in lines(event) where line.starts(with: prefix) {
            var value = line.dropFirst(prefix.count)
            if value.first == 0x20 { value = value.dropFirst() }
            return Substring(String(decoding: value, as: UTF8.self))
        }
        return nil
    }

    static func lines(_ event: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        var start = event.startIndex
        for i in event.indices where event[i] == 0x0A {
            var end = i
            if end > start, event[end - 1] == 0x0D { end -= 1 }
            if end > start { out.append(event[start..<end]) }
            start = i + 1
        }
        if start < event.endIndex { out.append(event[start..<event.endIndex]) }
        return out
    }

    /// Whether `bytes` contains `"key"` followed by optional spaces, a colon and an opening brace,
    /// so only events with a real object value are parsed.
    public static func hasObjectMember(_ key: String, in bytes: ArraySlice<UInt8>) -> Bool {
        let needle = Array("\"\(key)\"".utf8)
        guard needle.count <= bytes.count else { return false }
        var i = bytes.startIndex
        let last = bytes.endIndex - needle.count
        while i <= last {
            if bytes[i] == needle[0], bytes[i..<(i + needle.count)].elementsEqual(needle) {
                var j = i + needle.count
                while j < bytes.endIndex, bytes[j] == 0x20 { j += 1 }
                if j < bytes.endIndex, bytes[j] == UInt8(ascii: ":") {
                    j += 1
                    while j < bytes.endIndex, bytes[j] == 0x20 { j += 1 }
                    if j < bytes.endIndex, bytes[j] == UInt8(ascii: "{") { return true }
                }
            }
            i += 1
        }
        return false
    }
}
