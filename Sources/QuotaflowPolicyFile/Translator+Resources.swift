import QuotaflowCore
import Yams

extension Translator {
    // MARK: pools and resources

    mutating func pools(_ node: Node) throws(PolicyFileError) -> JSONValue {
        var out: [JSONValue] = []
        for (name, keyNode, value) in try entries(node, "pools") {
            let field = "pools.\(name)"
            note(field, keyNode, field)
            var members: [(String, JSONValue)] = [("name", .string(name))]
            if case .scalar(let s) = value, s.style == .plain, s.string.isEmpty || s.string == "~" || s.string == "null" {
                out.append(.object(members))
                continue
            }
            for (key, kNode, v) in try entries(value, field) {
                switch key {
                case "description":
                    members.append((key, .string(try string(v, "\(field).\(key)"))))
                case "resources":
                    var resources: [JSONValue] = []
                    for (rname, rNode, r) in try entries(v, "\(field).resources") {
                        resources.append(try resource(rname, rNode, r, field: "\(field).resources.\(rname)"))
                    }
                    members.append(("resources", .array(resources)))
                default: throw unknown(key, kNode, field, ["description", "resources"])
                }
            }
            out.append(.object(members))
        }
        return .array(out)
    }

    static let secretKeys: Set<String> = ["credential", "refresh_token", "client_secret"]

    mutating func resource(_ name: String, _ keyNode: Node, _ node: Node, field: String) throws(PolicyFileError) -> JSONValue {
        note(field, keyNode, field)
        var members: [(String, JSONValue)] = [("name", .string(name))]
        for (key, _, value) in try entries(node, field) {
            let f = "\(field).\(key)"
            if key == "credential" {
                members.append((key, .string(try secret(value, f))))
                note(f, value, f)
            } else if key == "oauth" {
                var oauth: [(String, JSONValue)] = []
                note(f, value, f)
                for (k, _, v) in try entries(value, f) {
                    if Self.secretKeys.contains(k) {
                        oauth.append((k, .string(try secret(v, "\(f).\(k)"))))
                        note("\(f).\(k)", v, "\(f).\(k)")
                    } else {
                        oauth.append((k, try generic(v, "\(f).\(k)", doc: "\(f).\(k)")))
                    }
                }
                members.append((key, .object(oauth)))
            } else if key.hasSuffix("_usd") {
                let doc = String(key.dropLast(4)) + "_micros"
                members.append((doc, .int(try money(value, f))))
                note("\(field).\(doc)", value, f)
            } else {
                members.append((key, try generic(value, f, doc: f)))
            }
        }
        return .object(members)
    }
}
