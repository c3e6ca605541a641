import QuotaflowCore

extension JSONValue {
    /// Parses stored JSON text; storage is written by us, so a failure yields `fallback`.
    static func stored(_ text: String, fallback: JSONValue = .null) -> JSONValue {
        (try? JSONParser.parse(Array(text.utf8))) ?? fallback
    }
}

func storedStrings(_ text: String) -> [String] {
    JSONValue.stored(text).arrayValue?.compactMap(\.stringValue) ?? []
}

func storedMap(_ text: String) -> [String: String] {
    var out: [String: String] = [:]
    for (k, v) in JSONValue.stored(text).objectMembers ?? [] { out[k] = v.stringValue }
    return out
}

func jsonText(_ strings: [String]) -> SQLValue { .text(JSONValue.strings(strings).text) }

func jsonText(_ map: [String: String]) -> SQLValue {
    .text(JSONValue.object(map.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }).text)
}

/// Keyset pagination: rows after a cursor, newest or by id.
public struct Page<T: Sendable>: Sendable {
    public let items: [T]
    public let nextCursor: String?

    public init(items: [T], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}
