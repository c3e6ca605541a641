import QuotaflowCore
import Yams

/// Reads the YAML tree into the policy document, field by field, recording where each came from.
/// Structure, types, money and references are checked here; what needs the tenant's state (pools,
/// the hierarchy, prices) the server checks, and its errors are placed back through `positions`.
struct Translator {
    let file: String
    let secrets: SecretSource
    var positions: [String: PolicyFile.Position] = [:]

    init(file: String, secrets: SecretSource) {
        self.file = file
        self.secrets = secrets
    }

    // MARK: helpers

    func fail(_ node: Node, _ field: String, _ message: String) -> PolicyFileError {
        PolicyFileError(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1, field: field, message: message)
    }

    mutating func note(_ docPath: String, _ node: Node, _ field: String) {
        positions[docPath] = PolicyFile.Position(line: node.mark?.line ?? 1, column: node.mark?.column ?? 1, field: field)
    }

    /// A mapping's entries with string keys, in file order.
    func entries(_ node: Node, _ field: String) throws(PolicyFileError) -> [(key: String, keyNode: Node, value: Node)] {
        guard case .mapping(let m) = node else { throw fail(node, field, "must be a mapping (key: value lines), got \(kind(node))") }
        var out: [(String, Node, Node)] = []
        for (k, v) in m {
            guard case .scalar(let s) = k else { throw fail(k, field, "keys must be plain names") }
            out.append((s.string, k, v))
        }
        return out
    }

    func kind(_ node: Node) -> String {
        switch node {
        case .scalar(let s): return s.style == .plain ? "'\(s.string.prefix(40))'" : "a quoted string"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    func unknown(_ key: String, _ keyNode: Node, _ field: String, _ known: [String]) -> PolicyFileError {
        fail(keyNode, field.isEmpty ? key : "\(field).\(key)", "unknown key '\(key)'; expected one of: \(known.joined(separator: ", "))")
    }

    func scalar(_ node: Node, _ field: String, _ what: String) throws(PolicyFileError) -> Node.Scalar {
        guard case .scalar(let s) = node else { throw fail(node, field, "must be \(what), got \(kind(node))") }
        return s
    }

    func string(_ node: Node, _ field: String) throws(PolicyFileError) -> String {
        let s = try scalar(node, field, "a string")
        if s.style == .plain && (s.string == "~" || s.string == "null" || s.string.isEmpty) {
            throw fail(node, field, "must be a string, got nothing")
        }
        return s.string
    }

    func int(_ node: Node, _ field: String) throws(PolicyFileError) -> Int64 {
        let s = try scalar(node, field, "a whole number")
        guard s.style == .plain, let v = Int64(s.string) else { throw fail(node, field, "must be a whole number, got \(kind(node))") }
        return v
    }

    func bool(_ node: Node, _ field: String) throws(PolicyFileError) -> Bool {
        let s = try scalar(node, field, "true or false")
        guard s.style == .plain, s.string == "true" || s.string == "false" else {
            throw fail(node, field, "must be true or false, got \(kind(node))")
        }
        return s.string == "true"
    }

    /// Decimal US dollars, quoted or not, read from the scalar's text: never a float.
    func money(_ node: Node, _ field: String) throws(PolicyFileError) -> Int64 {
        let s = try scalar(node, field, "an amount in US dollars")
        do { return try DecimalUSD.micros(s.string) } catch { throw fail(node, field, error.description) }
    }

    func list(_ node: Node, _ field: String) throws(PolicyFileError) -> [Node] {
        guard case .sequence(let seq) = node else { throw fail(node, field, "must be a list, got \(kind(node))") }
        return Array(seq)
    }

    mutating func strings(_ node: Node, _ field: String, doc: String) throws(PolicyFileError) -> JSONValue {
        var out: [JSONValue] = []
        for (i, item) in try list(node, field).enumerated() {
            out.append(.string(try string(item, "\(field)[\(i)]")))
            note("\(doc)[\(i)]", item, "\(field)[\(i)]")
        }
        return .array(out)
    }

    mutating func ints(_ node: Node, _ field: String, doc: String) throws(PolicyFileError) -> JSONValue {
        var out: [JSONValue] = []
        for (i, item) in try list(node, field).enumerated() {
            out.append(.int(try int(item, "\(field)[\(i)]")))
            note("\(doc)[\(i)]", item, "\(field)[\(i)]")
        }
        return .array(out)
    }

    /// A secret: `${VAR}` from the environment, or `{credential_file: PATH}`, never a literal.
    func secret(_ node: Node, _ field: String) throws(PolicyFileError) -> String {
        if case .mapping = node {
            let e = try entries(node, field)
            guard e.count == 1, e[0].key == "credential_file" else {
                throw fail(node, field, "a secret is written as ${ENV_VAR} or as credential_file: PATH")
            }
            let path = try string(e[0].value, "\(field).credential_file")
            let text: String
            do { text = try secrets.readFile(path) } catch { throw fail(e[0].value, "\(field).credential_file", "cannot read '\(path)': \(error)") }
            let trimmed = text.hasSuffix("\n") ? String(text.dropLast()) : text
            guard !trimmed.isEmpty else { throw fail(e[0].value, "\(field).credential_file", "'\(path)' is empty") }
            return trimmed
        }
        let text = try string(node, field)
        guard text.hasPrefix("${"), text.hasSuffix("}"), text.count > 3 else {
            throw fail(node, field, "secrets never live in the file: write ${ENV_VAR} or credential_file: PATH")
        }
        let name = String(text.dropFirst(2).dropLast())
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw fail(node, field, "'\(name)' is not an environment variable name")
        }
        guard let value = secrets.environment[name], !value.isEmpty else {
            throw fail(node, field, "the environment variable \(name) is not set (or empty) on this machine")
        }
        return value
    }

    /// A value outside the known schema (resource settings): YAML as JSON, with `*_usd` keys as
    /// exact `*_micros`. The server checks the fields.
    mutating func generic(_ node: Node, _ field: String, doc: String) throws(PolicyFileError) -> JSONValue {
        note(doc, node, field)
        switch node {
        case .mapping:
            var members: [(String, JSONValue)] = []
            for (key, keyNode, value) in try entries(node, field) {
                let f = "\(field).\(key)"
                if key.hasSuffix("_usd") {
                    let name = String(key.dropLast(4)) + "_micros"
                    note("\(doc).\(name)", keyNode, f)
                    members.append((name, .int(try money(value, f))))
                } else {
                    members.append((key, try generic(value, f, doc: "\(doc).\(key)")))
                }
            }
            return .object(members)
        case .sequence(let seq):
            var out: [JSONValue] = []
            for (i, item) in seq.enumerated() { out.append(try generic(item, "\(field)[\(i)]", doc: "\(doc)[\(i)]")) }
            return .array(out)
        case .scalar(let s):
            guard s.style == .plain else { return .string(s.string) }
            switch s.string {
            case "true": return .bool(true)
            case "false": return .bool(false)
            case "~", "null", "": return .null
            default:
                if let v = Int64(s.string) { return .int(v) }
                if let d = Double(s.string), s.string.contains(".") { return .double(d) }
                return .string(s.string)
            }
        case .alias:
            throw fail(node, field, "aliases are not supported; write the value out")
        }
    }

}
