/// RFC 7396 JSON merge patch: objects merge recursively, `null` removes a member, anything else replaces.
public enum JSONMergePatch {
    public static func apply(_ patch: JSONValue, to target: JSONValue) -> JSONValue {
        guard case .object(let patchMembers) = patch else { return patch }
        var result: [(String, JSONValue)] = target.objectMembers ?? []
        for (key, value) in patchMembers {
            let index = result.firstIndex(where: { $0.0 == key })
            if value.isNull {
                if let index { result.remove(at: index) }
            } else if let index {
                result[index].1 = apply(value, to: result[index].1)
            } else {
                result.append((key, apply(value, to: .null)))
            }
        }
        return .object(result)
    }
}
