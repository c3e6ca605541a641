import Foundation
import Hummingbird
import QuotaflowCore

/// Pools and resources: state with the evidence for the last change, in-flight against
/// concurrency, usage windows with their resets, cooldowns and recent probes; verify, suspend,
/// resume, revoke and a write-only credential rotation.
extension ConsoleController {
    static let resourceActions: Set<String> = ["verify", "suspend", "resume", "revoke"]

    func registerResources(on console: RouterGroup<AppRequestContext>) {
        console.get("resources") { request, context in
            let (session, tenant) = try await signedIn(request)
            let filters = Self.passOn(request, ["pool_id", "state", "kind"])
            let pools = try await get("/pools", [("limit", "1000")], session: session, tenant: tenant, context: context)
            let resources = try await get(
                "/resources", filters + Self.passOn(request, ["cursor"]) + [("limit", "100")], session: session, tenant: tenant, context: context)
            let now = state.clock.nowMs()
            let rows = TemplateData.list(resources).map { r in
                var r = r
                if let until = (r["cooling_until"] as? String).flatMap(Timestamp.parse), until > now { r["cooling"] = true }
                return r
            }
            let chosen = request.uri.queryParameters.get("pool_id").map { String($0) }
            var data: [String: Any] = [
                "pools": TemplateData.list(pools), "pool_options": Self.options(TemplateData.list(pools), selected: chosen),
                "resources": rows, "has_resources": !rows.isEmpty,
                "next": resources["next_cursor"]?.stringValue.map { "/console/resources?" + AdminDispatch.encode(filters + [("cursor", $0)]) }
                    ?? false,
            ]
            if let s = request.uri.queryParameters.get("state") { data["state_is_" + ConsoleForm.templateKey(String(s))] = true }
            return page("resources", title: "Pools and resources", session: session, tenant: tenant, data: data)
        }
        console.get("resources/{id}") { request, context in
            let (session, tenant) = try await signedIn(request)
            return try await resourcePage(session: session, tenant: tenant, id: context.parameters.require("id"), context: context)
        }
        console.post("resources/{id}/{action}") { request, context in
            let (session, tenant, form) = try await signedInPost(request, context)
            let id = try context.parameters.require("id")
            let action = try context.parameters.require("action")
            let path = "/resources/\(AdminDispatch.segment(id))"
            if action == "rotate" {
                // A static credential, or an OAuth resource's new refresh token and/or client secret.
                let oauth = form.values["oauth.refresh_token"] != nil || form.values["oauth.client_secret"] != nil
                let spec = FormSpec(fields: oauth ? [("oauth.refresh_token", .text), ("oauth.client_secret", .text)] : [("credential", .text)])
                do {
                    _ = try await send(
                        .post, path + "/rotate-credential", body: try spec.json(form), session: session, tenant: tenant, context: context)
                } catch let refusal {
                    let p = try Self.refusal(refusal)
                    return try await resourcePage(session: session, tenant: tenant, id: id, context: context, error: p)
                }
                return done("/console/resources/\(AdminDispatch.segment(id))", "The credential was replaced.", session: session)
            }
            guard Self.resourceActions.contains(action) else { throw ProblemError.notFound("action '\(action.prefix(40))'") }
            let result = try await send(.post, path + "/" + action, session: session, tenant: tenant, context: context)
            let outcome = action == "verify" ? (result["ok"]?.boolValue == true ? "passed" : "failed") : "done"
            return done("/console/resources/\(AdminDispatch.segment(id))", "\(action.capitalized): \(outcome).", session: session)
        }
    }

    func resourcePage(
        session: ConsoleSession, tenant: String, id: String, context: AppRequestContext, error: ProblemError? = nil
    ) async throws
        -> Response
    {
        let path = "/resources/\(AdminDispatch.segment(id))"
        let resource = try await get(path, session: session, tenant: tenant, context: context)
        let health = try await get(path + "/health", [("limit", "10")], session: session, tenant: tenant, context: context)
        var data: [String: Any] = ["resource": TemplateData.object(resource), "health": TemplateData.object(health)]
        let state = resource["state"]?.stringValue ?? ""
        data["can_suspend"] = state != "suspended" && state != "revoked"
        data["can_resume"] = state == "suspended" || resource["manual_hold"]?.boolValue == true
        data["live"] = state != "revoked"
        // Overflow capacity uses the operator's credential and a passthrough seat stores none.
        data["can_rotate"] = resource["kind"]?.stringValue != "overflow" && resource["lease_mode"]?.stringValue != "passthrough"
        data["rotate_oauth"] = resource["oauth"].map { !$0.isNull } ?? false
        data.merge(Self.errorData(error)) { $1 }
        return page(
            "resource", title: resource["name"]?.stringValue ?? "Resource", session: session, tenant: tenant, data: data,
            status: error?.status ?? .ok)
    }
}
