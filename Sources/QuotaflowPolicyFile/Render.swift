import QuotaflowCore

/// A tenant's exported state (the server's policy document) written back as a policy file, in the
/// same words `PolicyFile` reads: money as decimal USD, and every secret as a `${VAR}` reference
/// (the server never hands one out). Reading the result gives back the same document.
public enum PolicyExport {
    /// The YAML text, and the environment variables its references name.
    public static func yaml(_ document: JSONValue) -> (text: String, variables: [String]) {
        var w = YAMLWriter()
        w.line("# Quotaflow policy, exported; secrets are references: set them in the environment before plan or apply.")
        if let tenant = document["tenant"]?.stringValue { w.pair("tenant", .string(tenant), 0) }
        if let settings = document["settings"], !(settings.objectMembers ?? []).isEmpty {
            w.key("global", 0)
            w.object(global(settings), 1)
        }
        if let pricing = document["pricing"]?.arrayValue, !pricing.isEmpty {
            w.key("pricing", 0)
            for entry in pricing {
                w.key(entry["model"]?.stringValue ?? "", 1)
                w.object(usd(.object((entry.objectMembers ?? []).filter { $0.0 != "model" })), 2)
            }
        }
        var variables: [String] = []
        if let pools = document["pools"]?.arrayValue, !pools.isEmpty {
            w.key("pools", 0)
            for pool in pools {
                let poolName = pool["name"]?.stringValue ?? ""
                let resources = pool["resources"]?.arrayValue ?? []
                if resources.isEmpty && pool["description"] == nil {
                    w.pair(poolName, .null, 1)
                    continue
                }
                w.key(poolName, 1)
                if let d = pool["description"] { w.pair("description", d, 2) }
                guard !resources.isEmpty else { continue }
                w.key("resources", 2)
                for r in resources {
                    let name = r["name"]?.stringValue ?? ""
                    w.key(name, 3)
                    var members = usd(.object((r.objectMembers ?? []).filter { $0.0 != "name" && $0.0 != "oauth" })).objectMembers ?? []
                    if takesCredential(r) {
                        let v = variable("QF", poolName, name, "CREDENTIAL")
                        variables.append(v)
                        members.insert(("credential", .string("${\(v)}")), at: min(2, members.count))
                    }
                    if let oauth = r["oauth"] {
                        var o = oauth.objectMembers ?? []
                        let v = variable("QF", poolName, name, "REFRESH_TOKEN")
                        variables.append(v)
                        o.append(("refresh_token", .string("${\(v)}")))
                        members.append(("oauth", .object(o)))
                    }
                    w.object(.object(members), 4)
                }
            }
        }
        if let projects = document["projects"]?.arrayValue, !projects.isEmpty {
            w.key("projects", 0)
            for p in projects {
                let name = p["name"]?.stringValue ?? ""
                w.key(name, 1)
                let (members, names) = project(p, name: name)
                variables += names
                w.object(.object(members), 2)
            }
        }
        return (w.text, variables)
    }

    static func takesCredential(_ r: JSONValue) -> Bool {
        r["kind"]?.stringValue != "overflow" && r["lease_mode"]?.stringValue != "passthrough" && r["oauth"] == nil
    }

    /// `QF_MAIN_OPENAI_PRIMARY_CREDENTIAL`: letters and digits kept, the rest underscores.
    static func variable(_ parts: String...) -> String {
        parts.map { part in String(part.uppercased().map { $0.isLetter && $0.isASCII || $0.isNumber ? $0 : "_" }) }.joined(separator: "_")
    }

    /// `*_micros` fields as `*_usd` decimal text, at any depth.
    static func usd(_ v: JSONValue) -> JSONValue {
        switch v {
        case .object(let members):
            return .object(
                members.map { k, v in
                    if k.hasSuffix("_micros"), case .int(let m) = v { return (String(k.dropLast(7)) + "_usd", .string(DecimalUSD.text(m))) }
                    return (k, usd(v))
                })
        case .array(let items): return .array(items.map(usd))
        default: return v
        }
    }

    static func global(_ s: JSONValue) -> JSONValue {
        var out: [(String, JSONValue)] = []
        for (k, v) in dollars(s.objectMembers ?? [], ["monthly_limit_micros": "monthly_limit_usd", "tool_call_price_micros": "tool_call_price_usd"]) {
            switch k {
            case "request_limits": out += dollars(v.objectMembers ?? [], ["max_cost_micros": "max_cost_per_request_usd"])
            case "default_price": out.append((k, usd(v)))
            default: out.append((k, v))
            }
        }
        return .object(out)
    }

    static let rateNames = [
        "rpm": "requests_per_minute", "rpm_per_key": "requests_per_key_per_minute", "rpm_per_user": "requests_per_user_per_minute",
        "tpm": "tokens_per_minute",
    ]

    static func project(_ p: JSONValue, name: String) -> ([(String, JSONValue)], [String]) {
        var out: [(String, JSONValue)] = []
        var variables: [String] = []
        var overflow: [(String, JSONValue)] = []
        for (k, v) in p.objectMembers ?? [] {
            switch k {
            case "name": continue
            case "overflow_allowed": overflow.append(("allowed", v))
            case "overflow_cap_micros": overflow += dollars([(k, v)], [k: "cap_usd"])
            case "budget":
                var b: [(String, JSONValue)] = []
                for (bk, bv) in v.objectMembers ?? [] {
                    switch bk {
                    case "monthly_cap_micros": b += dollars([(bk, bv)], [bk: "monthly_limit_usd"])
                    case "fallback": b.append(("fallback", .object(dollars(bv.objectMembers ?? [], ["cap_micros": "monthly_limit_usd"]))))
                    default: b.append((bk, bv))
                    }
                }
                out.append(("budget", .object(b)))
            case "request_limits":
                out.append(("per_request", .object(dollars(v.objectMembers ?? [], ["max_cost_micros": "max_cost_per_request_usd"]))))
            case "rate_limits": out.append(("rate_limits", .object((v.objectMembers ?? []).map { (rateNames[$0.0] ?? $0.0, $0.1) })))
            case "alert_channels":
                let channels: [JSONValue] = (v.arrayValue ?? []).enumerated().map { i, c in
                    let variable = variable("QF", name, "ALERT", "\(i + 1)")
                    variables.append(variable)
                    let type: JSONValue = c["format"]?.stringValue == "slack" ? "slack" : "webhook"
                    return .object([("type", type), ("webhook", .string("${\(variable)}"))])
                }
                out.append(("alert_channels", .array(channels)))
            case "keys":
                out.append(
                    (
                        "keys",
                        .object(
                            (v.arrayValue ?? []).map { k in
                                (k["name"]?.stringValue ?? "", .object(keyOrSeat((k.objectMembers ?? []).filter { $0.0 != "name" })))
                            })
                    ))
            case "seats":
                out.append(
                    (
                        "seats",
                        .object(
                            (v.arrayValue ?? []).map { s in
                                (s["holder"]?.stringValue ?? "", .object(keyOrSeat((s.objectMembers ?? []).filter { $0.0 != "holder" })))
                            })
                    ))
            default: out.append((k, v))
            }
        }
        if !overflow.isEmpty { out.append(("overflow", .object(overflow))) }
        return (out, variables)
    }

    static func keyOrSeat(_ members: [(String, JSONValue)]) -> [(String, JSONValue)] {
        dollars(members, ["budget_cap_micros": "budget_usd"]).map { k, v in (["rpm": "requests_per_minute", "expires_at": "expires"][k] ?? k, v) }
    }

    /// Renames micro-USD fields to their decimal USD names (`cap_micros` → `monthly_limit_usd: "800.00"`).
    static func dollars(_ members: [(String, JSONValue)], _ names: [String: String]) -> [(String, JSONValue)] {
        members.map { k, v in
            if let name = names[k], case .int(let m) = v { return (name, .string(DecimalUSD.text(m))) }
            return (k, v)
        }
    }
}

/// A policy plan (the server's answer) as text for a terminal or a pull request: one line per
/// object, its fields old → new beneath, and a summary line. Secrets show as changed, never shown.
public enum PolicyPlanText {
    public static func render(_ plan: JSONValue) -> String {
        var lines: [String] = []
        let marks = ["create": "+", "update": "~", "archive": "-", "revoke": "-", "delete": "-"]
        for change in plan["changes"]?.arrayValue ?? [] {
            let action = change["action"]?.stringValue ?? ""
            lines.append("\(marks[action] ?? "?") \(action) \(change["kind"]?.stringValue ?? "") \(change["name"]?.stringValue ?? "")")
            for f in change["fields"]?.arrayValue ?? [] {
                let name = f["field"]?.stringValue ?? ""
                if f["secret"] == .bool(true) {
                    lines.append("    \(name): (secret, changed)")
                } else {
                    lines.append("    \(name): \(show(name, f["old"])) → \(show(name, f["new"]))")
                }
            }
        }
        let summary = plan["summary"]
        func n(_ k: String) -> Int64 { summary?[k]?.int64Value ?? 0 }
        let total = n("create") + n("update") + n("archive") + n("revoke") + n("delete")
        if total == 0 {
            lines.append("No changes: the tenant matches the file.")
        } else {
            lines.append(
                "Plan: \(n("create")) to create, \(n("update")) to update, \(n("archive")) to archive, \(n("revoke")) to revoke, \(n("delete")) to delete."
            )
        }
        return lines.joined(separator: "\n")
    }

    static func show(_ field: String, _ v: JSONValue?) -> String {
        guard let v, !v.isNull else { return "(none)" }
        if field.hasSuffix("_micros"), case .int(let m) = v { return "$" + DecimalUSD.text(m) }
        return JSONWriter.string(v)
    }
}

/// A small YAML writer for exported policies: block mappings and lists, scalars quoted when a plain
/// one would read back as something else.
struct YAMLWriter {
    var text = ""

    mutating func line(_ s: String) { text += s + "\n" }

    func pad(_ depth: Int) -> String { String(repeating: "  ", count: depth) }

    mutating func key(_ k: String, _ depth: Int) { line(pad(depth) + Self.scalar(k) + ":") }

    mutating func pair(_ k: String, _ v: JSONValue, _ depth: Int) {
        switch v {
        case .object(let m) where !m.isEmpty:
            key(k, depth)
            object(v, depth + 1)
        case .array(let items) where !items.isEmpty && items.contains(where: { $0.objectMembers != nil }):
            key(k, depth)
            for item in items {
                let members = item.objectMembers ?? []
                for (i, (ik, iv)) in members.enumerated() {
                    let prefix = i == 0 ? pad(depth) + "- " : pad(depth + 1)
                    if case .object(let m) = iv, !m.isEmpty {
                        line(prefix + Self.scalar(ik) + ":")
                        object(iv, depth + 2)
                    } else {
                        line(prefix + Self.scalar(ik) + ": " + Self.inline(iv))
                    }
                }
            }
        default:
            line(pad(depth) + Self.scalar(k) + ": " + Self.inline(v))
        }
    }

    mutating func object(_ v: JSONValue, _ depth: Int) {
        for (k, value) in v.objectMembers ?? [] { pair(k, value, depth) }
    }

    static func inline(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .string(let s): return scalar(s)
        case .array(let items): return "[" + items.map(inline).joined(separator: ", ") + "]"
        case .object(let m): return "{" + m.map { scalar($0.0) + ": " + inline($0.1) }.joined(separator: ", ") + "}"
        }
    }

    /// Plain when it reads back as the same string; otherwise double-quoted (JSON escapes are YAML's).
    static func scalar(_ s: String) -> String {
        let plain =
            !s.isEmpty
            && s.unicodeScalars.allSatisfy { c in
                (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || "_-./@".unicodeScalars.contains(c)
            }
        let ambiguous =
            ["true", "false", "null", "yes", "no", "on", "off", "~"].contains(s.lowercased()) || Int64(s) != nil || Double(s) != nil
            || s.first == "-" || s.first == "." || s.first == "@"
        if plain && !ambiguous { return s }
        return JSONWriter.string(.string(s))
    }
}
