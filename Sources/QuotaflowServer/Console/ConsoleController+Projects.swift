import Foundation
import Hummingbird
import QuotaflowCore

/// Projects: the hierarchy as a tree, a project's budget, rollover, overage policy, limits and
/// models (editable), and its keys (issue one, shown once; revoke).
extension ConsoleController {
    static let projectForm = FormSpec(
        fields: [
            ("name", .text), ("parent_id", .text), ("allowed_models", .list), ("pool_ids", .checkboxes),
            ("budget.monthly_cap_micros", .usd), ("budget.rollover_percent", .int), ("budget.overage_policy", .text),
            ("budget.fallback.model", .text), ("budget.fallback.cap_micros", .usd),
            ("rate_limits.rpm", .int), ("rate_limits.tpm", .int), ("request_limits.max_output_tokens", .int),
            ("request_limits.max_cost_micros", .usd),
        ], clearWhenEmpty: ["budget.fallback"])
    static let keyForm = FormSpec(fields: [("name", .text), ("allowed_models", .list), ("budget_cap_micros", .usd), ("rpm", .int)])

    func registerProjects(on console: RouterGroup<AppRequestContext>) {
        console.get("projects") { request, context in
            let (session, tenant) = try await signedIn(request)
            return try await projectsPage(session: session, tenant: tenant, context: context)
        }
        console.post("projects") { request, context in
            let (session, tenant, form) = try await signedInPost(request, context)
            do {
                let created = try await send(
                    .post, "/projects", body: try Self.projectForm.json(form), session: session, tenant: tenant, context: context)
                let id = created["id"]?.stringValue ?? ""
                return done("/console/projects/\(AdminDispatch.segment(id))", "Project created.", session: session)
            } catch let refusal {
                let p = try Self.refusal(refusal)
                return try await projectsPage(session: session, tenant: tenant, context: context, form: form.echo(), error: p)
            }
        }
        console.get("projects/{id}") { request, context in
            let (session, tenant) = try await signedIn(request)
            return try await projectPage(session: session, tenant: tenant, id: context.parameters.require("id"), context: context)
        }
        console.post("projects/{id}") { request, context in
            let (session, tenant, form) = try await signedInPost(request, context)
            let id = try context.parameters.require("id")
            var spec = Self.projectForm
            spec.patch = true
            do {
                let body = try spec.json(form)
                _ = try await send(.patch, "/projects/\(AdminDispatch.segment(id))", body: body, session: session, tenant: tenant, context: context)
                return done("/console/projects/\(AdminDispatch.segment(id))", "Project saved.", session: session)
            } catch let refusal {
                let p = try Self.refusal(refusal)
                return try await projectPage(session: session, tenant: tenant, id: id, context: context, form: form.echo(), error: p)
            }
        }
        console.post("projects/{id}/keys") { request, context in
            let (session, tenant, form) = try await signedInPost(request, context)
            let id = try context.parameters.require("id")
            do {
                let key = try await send(
                    .post, "/projects/\(AdminDispatch.segment(id))/keys", body: try Self.keyForm.json(form), session: session, tenant: tenant,
                    context: context)
                return done(
                    "/console/projects/\(AdminDispatch.segment(id))", "Key issued. Copy it now: it is shown only once.", session: session,
                    secretLabel: "Key for \(key["name"]?.stringValue ?? "")", secret: key["key"]?.stringValue)
            } catch let refusal {
                let p = try Self.refusal(refusal)
                return try await projectPage(session: session, tenant: tenant, id: id, context: context, keyForm: form.echo(), error: p)
            }
        }
        console.post("projects/{id}/keys/{key}/revoke") { request, context in
            let (session, tenant, _) = try await signedInPost(request, context)
            let id = AdminDispatch.segment(try context.parameters.require("id"))
            let key = AdminDispatch.segment(try context.parameters.require("key"))
            _ = try await send(.post, "/projects/\(id)/keys/\(key)/revoke", session: session, tenant: tenant, context: context)
            return done("/console/projects/\(id)", "Key revoked.", session: session)
        }
    }

    /// A validation refusal to show beside the form; anything else goes on to the error page.
    static func refusal(_ error: any Error) throws -> ProblemError {
        if let f = error as? FieldError { return ProblemError.invalid(f) }
        guard let p = error as? ProblemError, [400, 404, 409, 413, 422].contains(p.status.code) else { throw error }
        return p
    }

    /// The refusal's message by field (as templates name fields), and as a summary.
    static func errorData(_ p: ProblemError?) -> [String: Any] {
        guard let p else { return [:] }
        var errors: [String: Any] = [:]
        if let field = p.field {
            let prefix = field + ": "
            // A list item's error (`allowed_models[2]`) belongs beside the list's field.
            let name = field.firstIndex(of: "[").map { String(field[..<$0]) } ?? field
            errors[ConsoleForm.templateKey(name)] = p.detail.hasPrefix(prefix) ? String(p.detail.dropFirst(prefix.count)) : p.detail
        }
        return ["errors": errors, "error": p.detail]
    }

    func projectsPage(
        session: ConsoleSession, tenant: String, context: AppRequestContext, form: [String: Any] = [:], error: ProblemError? = nil
    )
        async throws -> Response
    {
        let projects = try await get("/projects", [("limit", "1000")], session: session, tenant: tenant, context: context)
        let pools = try await get("/pools", [("limit", "1000")], session: session, tenant: tenant, context: context)
        let rows = TemplateData.list(projects)
        let tree = Self.tree(rows, id: "id", parent: "parent_id").map { row, depth in row.merging(["depth": depth, "indent": depth > 0]) { $1 } }
        var data: [String: Any] = [
            "projects": tree, "has_projects": !rows.isEmpty, "form": form, "more_projects": projects["next_cursor"]?.stringValue != nil,
            "parents": Self.options(rows, selected: form["parent_id"] as? String),
            "pools": Self.options(TemplateData.list(pools), selectedList: form["pool_ids"] as? String),
        ]
        data.merge(Self.errorData(error)) { $1 }
        return page("projects", title: "Projects", session: session, tenant: tenant, data: data, status: error?.status ?? .ok)
    }

    func projectPage(
        session: ConsoleSession, tenant: String, id: String, context: AppRequestContext, form: [String: Any]? = nil, keyForm: [String: Any] = [:],
        error: ProblemError? = nil
    ) async throws -> Response {
        let path = "/projects/\(AdminDispatch.segment(id))"
        let project = try await get(path, session: session, tenant: tenant, context: context)
        let keys = try await get(path + "/keys", [("limit", "200")], session: session, tenant: tenant, context: context)
        let projects = try await get("/projects", [("limit", "1000")], session: session, tenant: tenant, context: context)
        let pools = try await get("/pools", [("limit", "1000")], session: session, tenant: tenant, context: context)
        let values = form ?? Self.formValues(project)
        let others = TemplateData.list(projects).filter { $0["id"] as? String != id }
        var data: [String: Any] = [
            "project": TemplateData.object(project), "form": values, "key_form": keyForm,
            "keys": TemplateData.list(keys).map { k in k.merging(["active": k["state"] as? String == "active"]) { $1 } },
            "more_keys": keys["next_cursor"]?.stringValue != nil,
            "parents": Self.options(others, selected: values["parent_id"] as? String),
            "pools": Self.options(TemplateData.list(pools), selectedList: values["pool_ids"] as? String),
        ]
        var errors = Self.errorData(error)
        if !keyForm.isEmpty { errors["key_errors"] = errors.removeValue(forKey: "errors") }
        data.merge(errors) { $1 }
        return page(
            "project", title: project["name"]?.stringValue ?? "Project", session: session, tenant: tenant, data: data,
            status: error?.status ?? .ok)
    }

    /// A project as the edit form shows it: amounts in dollars, lists joined.
    static func formValues(_ p: JSONValue) -> [String: Any] {
        func text(_ v: JSONValue?) -> String {
            switch v {
            case .string(let s): return s
            case .int(let i): return String(i)
            case .array(let items): return items.compactMap(\.stringValue).joined(separator: ", ")
            default: return ""
            }
        }
        func usd(_ v: JSONValue?) -> String { v?.int64Value.map(DecimalUSD.text) ?? "" }
        let budget = p["budget"]
        let policy = text(budget?["overage_policy"])
        return [
            "name": text(p["name"]), "parent_id": text(p["parent_id"]), "allowed_models": text(p["allowed_models"]),
            "pool_ids": text(p["pool_ids"]), "budget_monthly_cap_micros": usd(budget?["monthly_cap_micros"]),
            "budget_rollover_percent": text(budget?["rollover_percent"]), "budget_overage_policy_is_" + policy: true,
            "budget_fallback_model": text(budget?["fallback"]?["model"]), "budget_fallback_cap_micros": usd(budget?["fallback"]?["cap_micros"]),
            "rate_limits_rpm": text(p["rate_limits"]?["rpm"]), "rate_limits_tpm": text(p["rate_limits"]?["tpm"]),
            "request_limits_max_output_tokens": text(p["request_limits"]?["max_output_tokens"]),
            "request_limits_max_cost_micros": usd(p["request_limits"]?["max_cost_micros"]),
        ]
    }

    /// Choices for a select or a set of checkboxes, with what is chosen marked.
    static func options(_ rows: [[String: Any]], selected: String? = nil, selectedList: String? = nil) -> [[String: Any]] {
        let chosen = Set((selectedList ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        return rows.map { r in
            let id = r["id"] as? String ?? ""
            return ["id": id, "name": r["name"] ?? id, "selected": id == selected || chosen.contains(id)]
        }
    }
}
