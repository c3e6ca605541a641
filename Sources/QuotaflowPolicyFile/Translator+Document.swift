import QuotaflowCore
import Yams

extension Translator {
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
}
