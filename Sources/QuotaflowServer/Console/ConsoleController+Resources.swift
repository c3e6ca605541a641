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
            let filters = Self.passOn(request, ["pool_id", "state", "kind", "cursor"])
            let pools = try await get("/pools", [("limit", "1000")], session: session, tenant: tenant, context: context)
            let resources = try await get("/resources", filters + [("limit", "100")], session: session, tenant: tenant, context: context)
            let now = state.clock.nowMs()
            let rows = TemplateData.list(resources).map { r in
                var r = r
                if let until = (r["cooling_until"] as? String).flatMap(Timestamp.parse), until > now { r["cooling"] = true }
                r["state_" + (r["state"] as? String ?? "")] = true
                return r
            }
            return page(
                "resources", title: "Pools and resources", session: session, tenant: tenant,
                data: [
                    "pools": TemplateData.list(pools), "resources": rows, "has_resources": !rows.isEmpty,
                    "next_cursor": resources["next_cursor"]?.stringValue ?? false,
                    "filter": ConsoleForm(request.uri.query ?? "").echo(),
                ])
        }
        console.get("resources/{id}") { request, context in
            let (session, tenant) = try await signedIn(request)
            return try await resourcePage(session: session, tenant: tenant, id: context.parameters.require("id"), context: context)
        }
        console.post("resources/{id}/{action}") { request, context in
            let (session, tenant, form) = try await signedInPost(request)
            let id = try context.parameters.require("id")
            let action = try context.parameters.require("action")
            let path = "/resources/\(AdminDispatch.segment(id))"
            if action == "rotate" {
                do {
                    _ = try await send(
                        .post, path + "/rotate-credential", body: ["credential": .string(form["credential"])], session: session, tenant: tenant,
                        context: context)
                } catch let p as ProblemError where p.status == .unprocessableContent || p.status == .badRequest {
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
        if let error { data["errors"] = ["credential": error.detail] }
        return page(
            "resource", title: resource["name"]?.stringValue ?? "Resource", session: session, tenant: tenant, data: data,
            status: error?.status ?? .ok)
    }
}
