import QuotaflowCore
import Yams

extension Translator {
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
