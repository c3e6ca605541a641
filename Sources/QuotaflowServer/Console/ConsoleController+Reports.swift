import HTTPTypes
import Hummingbird
import QuotaflowCore

/// Usage (charts, a table and CSV), the ledger, approvals and the audit log: the API's filters,
/// a page at a time.
extension ConsoleController {
    static let groupings = ["project", "model", "holder", "day", "month", "key", "provider", "resource"]
    static let approvalForm = FormSpec(fields: [("grant_micros", .usd), ("model", .text), ("duration_seconds", .int), ("note", .text)])

    func registerReports(on console: RouterGroup<AppRequestContext>) {
        console.get("usage") { request, context in
            let (session, tenant) = try await signedIn(request)
            return try await usagePage(request, session: session, tenant: tenant, context: context)
        }
        console.get("usage.csv") { request, context in
            let (session, tenant) = try await signedIn(request)
            var response = try await api.raw(
                .get, "/tenants/\(AdminDispatch.segment(tenant))/usage", query: try Self.usageQuery(request) + [("format", "csv")],
                as: session.identity, context: context)
            response.headers[.contentDisposition] = "attachment; filename=\"usage.csv\""
            return response
        }
        console.get("ledger") { request, context in
            let (session, tenant) = try await signedIn(request)
            var query = Self.passOn(request, ["project_id", "key_id", "seat_id", "resource_id", "model", "status", "reason", "cursor"])
            query += try Self.range(request) + [("limit", "50")]
            let rows = try await get("/ledger", query, session: session, tenant: tenant, context: context)
            var next = Self.passOn(request, ["project_id", "key_id", "seat_id", "resource_id", "model", "status", "reason", "from", "to"])
            if let cursor = rows["next_cursor"]?.stringValue { next.append(("cursor", cursor)) }
            return page(
                "ledger", title: "Ledger", session: session, tenant: tenant,
                data: [
                    "rows": TemplateData.list(rows).map { r -> [String: Any] in
                        var r = r
                        if let id = r["project_id"] as? String { r["project_name"] = projectName(id, tenant: tenant) }
                        if let id = (r["seat_id"] ?? r["key_id"]) as? String { r["key_name"] = keyName(id, tenant: tenant) }
                        if let id = r["resource_id"] as? String { r["resource_name"] = resourceName(id, tenant: tenant) }
                        return r
                    },
                    "filter": ConsoleForm(request.uri.query ?? "").echo(),
                    "next": rows["next_cursor"]?.stringValue == nil ? false : "/console/ledger?" + AdminDispatch.encode(next),
                ])
        }
        console.get("approvals") { request, context in
            let (session, tenant) = try await signedIn(request)
            return try await approvalsPage(request, session: session, tenant: tenant, context: context)
        }
        console.post("approvals/{id}/{decision}") { request, context in
            let (session, tenant, form) = try await signedInPost(request, context)
            let id = AdminDispatch.segment(try context.parameters.require("id"))
            let decision = try context.parameters.require("decision")
            guard decision == "approve" || decision == "deny" else { throw ProblemError.notFound("decision") }
            do {
                let body = decision == "approve" ? try Self.approvalForm.json(form) : try FormSpec(fields: [("note", .text)]).json(form)
                _ = try await send(.post, "/approvals/\(id)/\(decision)", body: body, session: session, tenant: tenant, context: context)
            } catch let refusal {
                let p = try Self.refusal(refusal)
                return try await approvalsPage(request, session: session, tenant: tenant, context: context, form: form.echo(), error: p, failed: id)
            }
            return done("/console/approvals", decision == "approve" ? "Approved." : "Denied.", session: session)
        }
        console.get("audit") { request, context in
            let (session, tenant) = try await signedIn(request)
            let query = Self.passOn(request, ["action", "target_id", "cursor"]) + [("limit", "50")]
            let rows = try await get("/audit", query, session: session, tenant: tenant, context: context)
            var next = Self.passOn(request, ["action", "target_id"])
            if let cursor = rows["next_cursor"]?.stringValue { next.append(("cursor", cursor)) }
            // Each acting admin key by its name too, so the log reads as people.
            let keys = try await get("/admin-keys", [("limit", "1000")], session: session, tenant: tenant, context: context)
            var names: [String: String] = [:]
            for k in keys["data"]?.arrayValue ?? [] {
                if let id = k["id"]?.stringValue { names["admin_key:" + id] = k["name"]?.stringValue }
            }
            let entries = (rows["data"]?.arrayValue ?? []).map { e in
                let actor = e["actor"]?.stringValue ?? ""
                return TemplateData.object(e).merging(["summary_text": e["summary"]?.text ?? "", "actor_name": names[actor] ?? false]) { $1 }
            }
            return page(
                "audit", title: "Audit log", session: session, tenant: tenant,
                data: [
                    "rows": entries, "filter": ConsoleForm(request.uri.query ?? "").echo(),
                    "next": rows["next_cursor"]?.stringValue == nil ? false : "/console/audit?" + AdminDispatch.encode(next),
                ])
        }
    }

    /// `from`/`to` as dates (`2026-11-01`) become the API's times: from the start of `from` to the
    /// end of `to`.
    static func range(_ request: Request) throws -> [(String, String)] {
        var out: [(String, String)] = []
        for (name, suffix, shift) in [("from", "T00:00:00Z", Int64(0)), ("to", "T00:00:00Z", Int64(86_400_000))] {
            guard let raw = request.uri.queryParameters.get(name), !raw.isEmpty else { continue }
            guard raw.count == 10, let ms = Timestamp.parse(raw + suffix) else {
                throw ProblemError(.badRequest, code: "invalid_parameter", "'\(name)' must be a date such as 2026-11-01", field: name)
            }
            out.append((name, Timestamp.format(ms + shift)))
        }
        return out
    }

    static func usageQuery(_ request: Request) throws -> [(String, String)] {
        let group = request.uri.queryParameters.get("group_by").map { String($0) } ?? "project"
        return try range(request) + [("group_by", group)]
    }

    func usagePage(_ request: Request, session: ConsoleSession, tenant: String, context: AppRequestContext) async throws -> Response {
        let dates = try Self.range(request)
        let table = try await get("/usage", try Self.usageQuery(request), session: session, tenant: tenant, context: context)
        let byDay = try await get("/usage", dates + [("group_by", "day")], session: session, tenant: tenant, context: context)
        let byModel = try await get("/usage", dates + [("group_by", "model")], session: session, tenant: tenant, context: context)
        let byProject = try await get("/usage", dates + [("group_by", "project")], session: session, tenant: tenant, context: context)
        let byHolder = try await get("/usage", dates + [("group_by", "holder")], session: session, tenant: tenant, context: context)
        func name(_ id: String) -> String { projectName(id, tenant: tenant) }
        func points(_ v: JSONValue, _ key: String) -> [(label: String, value: Int64)] {
            (v["data"]?.arrayValue ?? []).map { row in
                let k = row[key]?.stringValue ?? "(none)"
                return (key == "project" ? name(k) : k, row["cost_micros"]?.int64Value ?? 0)
            }
        }
        let group = (table["group_by"]?.arrayValue ?? []).compactMap(\.stringValue)
        let rows = (table["data"]?.arrayValue ?? []).map { row -> [String: Any] in
            var r = TemplateData.object(row)
            r["keys"] = group.map { g -> String in
                let v = row[g]?.stringValue ?? "(none)"
                return g == "project" ? name(v) : v
            }
            return r
        }
        let totals = rows.reduce(Int64(0)) { $0 + ($1["cost_micros"] as? Int64 ?? 0) }
        let chosen = group.joined(separator: ",")
        return page(
            "usage", title: "Usage", session: session, tenant: tenant,
            data: [
                "from_text": table["from"]?.stringValue.flatMap(Timestamp.parse).map(ConsoleText.time) ?? "",
                "to_text": table["to"]?.stringValue.flatMap(Timestamp.parse).map(ConsoleText.time) ?? "",
                "day_chart": SVGChart.columns(points(byDay, "day"), title: "Spend by day"),
                "model_chart": SVGChart.breakdown(points(byModel, "model"), title: "Spend by model"),
                "project_chart": SVGChart.breakdown(points(byProject, "project"), title: "Spend by project"),
                "holder_chart": SVGChart.breakdown(points(byHolder, "holder"), title: "Spend by holder"),
                "columns": group, "rows": rows, "has_rows": !rows.isEmpty, "total_usd": ConsoleText.display(totals),
                "groupings": Self.groupings.map { ["name": $0, "selected": $0 == chosen] as [String: Any] },
                "filter": ConsoleForm(request.uri.query ?? "").echo(),
                "csv": "/console/usage.csv?" + AdminDispatch.encode(Self.passOn(request, ["from", "to", "group_by"])),
            ])
    }

    func approvalsPage(
        _ request: Request, session: ConsoleSession, tenant: String, context: AppRequestContext, form: [String: Any] = [:],
        error: ProblemError? = nil, failed: String? = nil
    ) async throws -> Response {
        let status = request.uri.queryParameters.get("status").map { String($0) } ?? "open"
        var query = Self.passOn(request, ["cursor"]) + [("limit", "50")]
        if status != "all" { query.append(("status", status)) }
        let list = try await get("/approvals", query, session: session, tenant: tenant, context: context)
        let rows = TemplateData.list(list).map { a in
            a.merging(["open": a["status"] as? String == "open", "failed": failed != nil && a["id"] as? String == failed]) { $1 }
        }
        var next = [("status", status)]
        if let cursor = list["next_cursor"]?.stringValue { next.append(("cursor", cursor)) }
        var data: [String: Any] = [
            "approvals": rows, "has_approvals": !rows.isEmpty, "form": form, "status_is_" + ConsoleForm.templateKey(status): true,
            "next": list["next_cursor"]?.stringValue == nil ? false : "/console/approvals?" + AdminDispatch.encode(next),
            "durations": [("3600", "1 hour"), ("86400", "1 day"), ("604800", "7 days"), ("2592000", "30 days")].map {
                ["value": $0.0, "label": $0.1, "selected": (form["duration_seconds"] as? String ?? "86400") == $0.0] as [String: Any]
            },
        ]
        data.merge(Self.errorData(error)) { $1 }
        return page("approvals", title: "Approvals", session: session, tenant: tenant, data: data, status: error?.status ?? .ok)
    }
}
