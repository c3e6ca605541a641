// One file by design for now: every section of the policy schema reads through the same helpers and position
// notes; splitting it by section (global, pools, workspaces) is the next clean-up.
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

    // MARK: the document

    mutating func top(_ node: Node) throws(PolicyFileError) -> JSONValue {
        let known = ["tenant", "global", "pricing", "pools", "workspaces", "projects"]
        var members: [(String, JSONValue)] = []
        var projects: JSONValue?
        for (key, keyNode, value) in try entries(node, "") {
            switch key {
            case "tenant":
                members.append(("tenant", .string(try string(value, key))))
                note("tenant", value, key)
            case "global": members.append(("settings", try global(value)))
            case "pricing": members.append(("pricing", try pricing(value)))
            case "pools": members.append(("pools", try pools(value)))
            case "workspaces", "projects":
                if projects != nil { throw fail(keyNode, key, "give workspaces or projects, not both") }
                projects = try self.projects(value, key)
            default: throw unknown(key, keyNode, "", known)
            }
        }
        if let projects { members.append(("projects", projects)) }
        return .object(members)
    }

    mutating func global(_ node: Node) throws(PolicyFileError) -> JSONValue {
        let known = [
            "monthly_org_limit_usd", "monthly_limit_usd", "max_cost_per_request_usd", "max_output_tokens", "max_input_tokens", "period",
            "alert_thresholds", "enforcement", "default_price", "max_seat_days", "max_seat_duration_seconds", "lease_idle_seconds", "hash_end_users",
            "tool_call_price_usd",
        ]
        var settings: [(String, JSONValue)] = []
        var limits: [(String, JSONValue)] = []
        note("settings", node, "global")
        for (key, keyNode, value) in try entries(node, "global") {
            let f = "global.\(key)"
            func at(_ doc: String) -> String { "settings.\(doc)" }
            switch key {
            case "monthly_org_limit_usd", "monthly_limit_usd":
                settings.append(("monthly_limit_micros", .int(try money(value, f))))
                note(at("monthly_limit_micros"), value, f)
            case "max_cost_per_request_usd":
                limits.append(("max_cost_micros", .int(try money(value, f))))
                note(at("request_limits.max_cost_micros"), value, f)
            case "max_output_tokens", "max_input_tokens":
                limits.append((key, .int(try int(value, f))))
                note(at("request_limits.\(key)"), value, f)
            case "period":
                settings.append(("period", try period(value, f, doc: at("period"))))
            case "alert_thresholds":
                settings.append((key, try ints(value, f, doc: at(key))))
                note(at(key), value, f)
            case "enforcement":
                settings.append((key, .string(try string(value, f))))
                note(at(key), value, f)
            case "default_price":
                settings.append((key, try price(value, f, doc: at(key))))
            case "max_seat_days":
                let (days, overflow) = try int(value, f).multipliedReportingOverflow(by: 86_400)
                if overflow { throw fail(value, f, "is too large") }
                settings.append(("max_seat_duration_seconds", .int(days)))
                note(at("max_seat_duration_seconds"), value, f)
            case "max_seat_duration_seconds", "lease_idle_seconds":
                settings.append((key, .int(try int(value, f))))
                note(at(key), value, f)
            case "hash_end_users":
                settings.append((key, .bool(try bool(value, f))))
                note(at(key), value, f)
            case "tool_call_price_usd":
                settings.append(("tool_call_price_micros", .int(try money(value, f))))
                note(at("tool_call_price_micros"), value, f)
            default: throw unknown(key, keyNode, "global", known)
            }
        }
        if !limits.isEmpty { settings.append(("request_limits", .object(limits))) }
        return .object(settings)
    }

    mutating func period(_ node: Node, _ field: String, doc: String) throws(PolicyFileError) -> JSONValue {
        note(doc, node, field)
        var members: [(String, JSONValue)] = []
        for (key, keyNode, value) in try entries(node, field) {
            switch key {
            case "day": members.append(("day", .int(try int(value, "\(field).day"))))
            case "time_zone": members.append(("time_zone", .string(try string(value, "\(field).time_zone"))))
            default: throw unknown(key, keyNode, field, ["day", "time_zone"])
            }
            note("\(doc).\(key)", value, "\(field).\(key)")
        }
        return .object(members)
    }

    static let priceKeys = ["input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "cache_write_per_mtok", "cache_write_1h_per_mtok"]

    mutating func price(_ node: Node, _ field: String, doc: String) throws(PolicyFileError) -> JSONValue {
        note(doc, node, field)
        var members: [(String, JSONValue)] = []
        for (key, keyNode, value) in try entries(node, field) {
            let f = "\(field).\(key)"
            if key.hasSuffix("_usd"), Self.priceKeys.contains(String(key.dropLast(4))) {
                let name = String(key.dropLast(4)) + "_micros"
                members.append((name, .int(try money(value, f))))
                note("\(doc).\(name)", value, f)
            } else if key.hasSuffix("_micros"), Self.priceKeys.contains(String(key.dropLast(7))) {
                members.append((key, .int(try int(value, f))))
                note("\(doc).\(key)", value, f)
            } else {
                throw unknown(key, keyNode, field, Self.priceKeys.map { $0 + "_usd" })
            }
        }
        return .object(members)
    }

    mutating func pricing(_ node: Node) throws(PolicyFileError) -> JSONValue {
        var out: [JSONValue] = []
        for (model, keyNode, value) in try entries(node, "pricing") {
            note("pricing.\(model)", keyNode, "pricing.\(model)")
            let p = try price(value, "pricing.\(model)", doc: "pricing.\(model)")
            out.append(.object([("model", .string(model))] + (p.objectMembers ?? [])))
        }
        return .array(out)
    }

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

    // MARK: projects

    mutating func projects(_ node: Node, _ section: String) throws(PolicyFileError) -> JSONValue {
        var out: [JSONValue] = []
        for (name, keyNode, value) in try entries(node, section) {
            out.append(try project(name, keyNode, value, field: "\(section).\(name)", doc: "projects.\(name)"))
        }
        return .array(out)
    }

    static let projectKeys = [
        "display_name", "description", "attributes", "parent", "pools", "allowed_models", "budget", "overage_policy", "fallback", "per_request",
        "rate_limits", "overflow", "enforcement", "alert_channels", "keys", "seats",
    ]

    mutating func project(_ name: String, _ keyNode: Node, _ node: Node, field: String, doc: String) throws(PolicyFileError) -> JSONValue {
        note(doc, keyNode, field)
        var members: [(String, JSONValue)] = [("name", .string(name))]
        var attributes: [(String, JSONValue)] = []
        var budget: [(String, JSONValue)] = []
        var channels: JSONValue?
        for (key, kNode, value) in try entries(node, field) {
            let f = "\(field).\(key)"
            let d = "\(doc).\(key)"
            switch key {
            case "display_name", "description":
                attributes.append((key, .string(try string(value, f))))
                note("\(doc).attributes.\(key)", value, f)
            case "attributes":
                for (k, _, v) in try entries(value, f) {
                    attributes.append((k, .string(try string(v, "\(f).\(k)"))))
                    note("\(doc).attributes.\(k)", v, "\(f).\(k)")
                }
            case "parent", "enforcement":
                members.append((key, .string(try string(value, f))))
                note(d, value, f)
            case "pools", "allowed_models":
                members.append((key, try strings(value, f, doc: d)))
                note(d, value, f)
            case "budget":
                let (b, c) = try self.budget(value, f, doc: "\(doc).budget")
                budget += b
                if let c { channels = c }
            case "overage_policy":
                budget.append(("overage_policy", .string(try overagePolicy(value, f))))
                note("\(doc).budget.overage_policy", value, f)
            case "fallback":
                budget.append(("fallback", try fallback(value, f, doc: "\(doc).budget.fallback")))
            case "per_request":
                members.append(("request_limits", try perRequest(value, f, doc: "\(doc).request_limits")))
            case "rate_limits":
                members.append(("rate_limits", try rateLimits(value, f, doc: "\(doc).rate_limits")))
            case "overflow":
                for (k, kn, v) in try entries(value, f) {
                    switch k {
                    case "allowed":
                        members.append(("overflow_allowed", .bool(try bool(v, "\(f).allowed"))))
                        note("\(doc).overflow_allowed", v, "\(f).allowed")
                    case "cap_usd":
                        members.append(("overflow_cap_micros", .int(try money(v, "\(f).cap_usd"))))
                        note("\(doc).overflow_cap_micros", v, "\(f).cap_usd")
                    default: throw unknown(k, kn, f, ["allowed", "cap_usd"])
                    }
                }
            case "alert_channels":
                channels = try alertChannels(value, f, doc: "\(doc).alert_channels")
            case "keys":
                var keys: [JSONValue] = []
                for (k, kn, v) in try entries(value, f) { keys.append(try keyEntry(k, kn, v, field: "\(f).\(k)", doc: "\(doc).keys.\(k)")) }
                members.append(("keys", .array(keys)))
            case "seats":
                var seats: [JSONValue] = []
                for (k, kn, v) in try entries(value, f) { seats.append(try seatEntry(k, kn, v, field: "\(f).\(k)", doc: "\(doc).seats.\(k)")) }
                members.append(("seats", .array(seats)))
            default: throw unknown(key, kNode, field, Self.projectKeys)
            }
        }
        if !attributes.isEmpty { members.append(("attributes", .object(attributes))) }
        if !budget.isEmpty { members.append(("budget", .object(budget))) }
        if let channels { members.append(("alert_channels", channels)) }
        return .object(members)
    }

    func overagePolicy(_ node: Node, _ field: String) throws(PolicyFileError) -> String {
        let v = try string(node, field)
        switch v {
        case "reject", "fallback_model", "overflow", "approval": return v
        case "approve": return "approval"
        default: throw fail(node, field, "'\(v)' is not an overage policy; use reject, fallback_model, approve or overflow")
        }
    }

    mutating func budget(_ node: Node, _ field: String, doc: String) throws(PolicyFileError) -> ([(String, JSONValue)], JSONValue?) {
        note(doc, node, field)
        var members: [(String, JSONValue)] = []
        var channels: JSONValue?
        var rolloverEnabled: (Bool, Node)?
        var rolloverCap: Int64?
        for (key, kNode, value) in try entries(node, field) {
            let f = "\(field).\(key)"
            switch key {
            case "monthly_limit_usd", "cap_usd":
                members.append(("monthly_cap_micros", .int(try money(value, f))))
                note("\(doc).monthly_cap_micros", value, f)
            case "period": members.append(("period", try period(value, f, doc: "\(doc).period")))
            case "rollover_enabled": rolloverEnabled = (try bool(value, f), value)
            case "rollover_cap_pct", "rollover_percent":
                rolloverCap = try int(value, f)
                note("\(doc).rollover_percent", value, f)
            case "alert_thresholds":
                members.append((key, try ints(value, f, doc: "\(doc).\(key)")))
                note("\(doc).\(key)", value, f)
            case "alert_channels":
                channels = try alertChannels(value, f, doc: String(doc.dropLast(".budget".count)) + ".alert_channels")
            case "overage_policy":
                members.append((key, .string(try overagePolicy(value, f))))
                note("\(doc).\(key)", value, f)
            case "fallback": members.append(("fallback", try fallback(value, f, doc: "\(doc).fallback")))
            default:
                throw unknown(
                    key, kNode, field,
                    [
                        "monthly_limit_usd", "period", "rollover_enabled", "rollover_cap_pct", "alert_thresholds", "alert_channels", "overage_policy",
                        "fallback",
                    ])
            }
        }
        if let (enabled, node) = rolloverEnabled {
            if enabled && rolloverCap == nil {
                throw fail(node, "\(field).rollover_enabled", "give rollover_cap_pct: how much unused budget carries over, in percent of the cap")
            }
            if !enabled { rolloverCap = 0 }
        }
        if let rolloverCap { members.append(("rollover_percent", .int(rolloverCap))) }
        return (members, channels)
    }

    mutating func fallback(_ node: Node, _ field: String, doc: String) throws(PolicyFileError) -> JSONValue {
        note(doc, node, field)
        var members: [(String, JSONValue)] = []
        for (key, kNode, value) in try entries(node, field) {
            let f = "\(field).\(key)"
            switch key {
            case "model":
                members.append((key, .string(try string(value, f))))
                note("\(doc).model", value, f)
            case "max_output_tokens":
                members.append((key, .int(try int(value, f))))
                note("\(doc).\(key)", value, f)
            case "monthly_limit_usd", "cap_usd":
                members.append(("cap_micros", .int(try money(value, f))))
                note("\(doc).cap_micros", value, f)
            default: throw unknown(key, kNode, field, ["model", "max_output_tokens", "monthly_limit_usd"])
            }
        }
        if !members.contains(where: { $0.0 == "cap_micros" }) {
            throw fail(node, field, "give monthly_limit_usd: the most the fallback model may spend in a month")
        }
        return .object(members)
    }

    mutating func perRequest(_ node: Node, _ field: String, doc: String) throws(PolicyFileError) -> JSONValue {
        note(doc, node, field)
        var members: [(String, JSONValue)] = []
        for (key, kNode, value) in try entries(node, field) {
            let f = "\(field).\(key)"
            switch key {
            case "max_output_tokens", "max_input_tokens":
                members.append((key, .int(try int(value, f))))
                note("\(doc).\(key)", value, f)
            case "max_cost_per_request_usd", "max_cost_usd":
                members.append(("max_cost_micros", .int(try money(value, f))))
                note("\(doc).max_cost_micros", value, f)
            default: throw unknown(key, kNode, field, ["max_output_tokens", "max_input_tokens", "max_cost_per_request_usd"])
            }
        }
        return .object(members)
    }

    static let rateNames = [
        "requests_per_minute": "rpm", "requests_per_key_per_minute": "rpm_per_key", "requests_per_user_per_minute": "rpm_per_user",
        "tokens_per_minute": "tpm",
    ]

    mutating func rateLimits(_ node: Node, _ field: String, doc: String) throws(PolicyFileError) -> JSONValue {
        note(doc, node, field)
        var members: [(String, JSONValue)] = []
        for (key, kNode, value) in try entries(node, field) {
            guard let name = Self.rateNames[key] else { throw unknown(key, kNode, field, Self.rateNames.keys.sorted()) }
            members.append((name, .int(try int(value, "\(field).\(key)"))))
            note("\(doc).\(name)", value, "\(field).\(key)")
        }
        return .object(members)
    }

    /// Channels Quotaflow delivers: Slack incoming webhooks and signed JSON webhooks. Any other type
    /// (email, PagerDuty) is an error, never dropped.
    mutating func alertChannels(_ node: Node, _ field: String, doc: String) throws(PolicyFileError) -> JSONValue {
        var out: [JSONValue] = []
        for (i, item) in try list(node, field).enumerated() {
            let f = "\(field)[\(i)]"
            let d = "\(doc)[\(i)]"
            note(d, item, f)
            let e = try entries(item, f)
            guard let type = e.first(where: { $0.key == "type" }) else { throw fail(item, f, "give the channel's type: slack or webhook") }
            let format: String
            switch try string(type.value, "\(f).type") {
            case "slack": format = "slack"
            case "webhook", "json", "http": format = "json"
            case let other:
                throw fail(
                    type.value, "\(f).type",
                    "channel type '\(other)' is not delivered by Quotaflow (it delivers slack and webhook); remove it or send it through a webhook")
            }
            var url: String?
            for (key, kNode, value) in e where key != "type" {
                switch key {
                case "webhook", "url":
                    // A Slack webhook URL is itself the credential; a signed webhook's URL may be written out.
                    if format == "slack" || (try? string(value, "")).map({ $0.hasPrefix("${") }) ?? true {
                        url = try secret(value, "\(f).\(key)")
                    } else {
                        url = try string(value, "\(f).\(key)")
                    }
                    note("\(d).url", value, "\(f).\(key)")
                default: throw unknown(key, kNode, f, ["type", "webhook", "url"])
                }
            }
            guard let url else { throw fail(item, f, "give the channel's webhook: its URL, as ${ENV_VAR}") }
            out.append(.object([("format", .string(format)), ("url", .string(url))]))
        }
        return .array(out)
    }

    /// The limits a key and a seat share: allowed models, a budget in USD, requests per minute.
    mutating func credentialLimit(
        _ key: String, _ value: Node, field f: String, doc: String, into members: inout [(String, JSONValue)]
    )
        throws(PolicyFileError) -> Bool
    {
        switch key {
        case "allowed_models":
            members.append((key, try strings(value, f, doc: "\(doc).\(key)")))
            note("\(doc).\(key)", value, f)
        case "budget_usd":
            members.append(("budget_cap_micros", .int(try money(value, f))))
            note("\(doc).budget_cap_micros", value, f)
        case "requests_per_minute", "rpm":
            members.append(("rpm", .int(try int(value, f))))
            note("\(doc).rpm", value, f)
        default: return false
        }
        return true
    }

    mutating func keyEntry(_ name: String, _ keyNode: Node, _ node: Node, field: String, doc: String) throws(PolicyFileError) -> JSONValue {
        note(doc, keyNode, field)
        var members: [(String, JSONValue)] = [("name", .string(name))]
        if case .scalar(let s) = node, s.style == .plain, s.string.isEmpty || s.string == "~" || s.string == "null" { return .object(members) }
        for (key, kNode, value) in try entries(node, field) where try !credentialLimit(key, value, field: "\(field).\(key)", doc: doc, into: &members)
        {
            throw unknown(key, kNode, field, ["allowed_models", "budget_usd", "requests_per_minute"])
        }
        return .object(members)
    }

    mutating func seatEntry(_ holder: String, _ keyNode: Node, _ node: Node, field: String, doc: String) throws(PolicyFileError) -> JSONValue {
        note(doc, keyNode, field)
        var members: [(String, JSONValue)] = [("holder", .string(holder))]
        for (key, kNode, value) in try entries(node, field) {
            let f = "\(field).\(key)"
            switch key {
            case "contact", "note":
                members.append((key, .string(try string(value, f))))
                note("\(doc).\(key)", value, f)
            case "expires", "expires_at":
                var at = try string(value, f)
                // A date alone means its start, in UTC.
                if at.count == 10 { at += "T00:00:00Z" }
                members.append(("expires_at", .string(at)))
                note("\(doc).expires_at", value, f)
            default:
                guard try credentialLimit(key, value, field: f, doc: doc, into: &members) else {
                    throw unknown(key, kNode, field, ["contact", "note", "expires", "allowed_models", "budget_usd", "requests_per_minute"])
                }
            }
        }
        return .object(members)
    }
}
