import QuotaflowCore

func jsonText(_ strings: [String]) -> SQLValue { .text(JSONValue.strings(strings).text) }

func jsonText(_ map: [String: String]) -> SQLValue {
    .text(JSONValue.object(map.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }).text)
}
