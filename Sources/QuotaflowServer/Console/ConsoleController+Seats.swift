import Hummingbird
import QuotaflowCore

/// Virtual seats: issue a contractor seat in one form (its key shown once), extend, revoke and
/// rotate; expired seats and those expiring within a week stand out.
extension ConsoleController {
    static let seatForm = FormSpec(fields: [
        ("holder", .text), ("contact", .text), ("note", .text), ("expires_at", .date), ("budget_cap_micros", .usd), ("allowed_models", .list),
        ("rpm", .int),
    ])
    static let expiringSoonMs: Int64 = 7 * 86_400_000

    func registerSeats(on console: RouterGroup<AppRequestContext>) {
        console.get("seats") { request, context in
            let (session, tenant) = try await signedIn(request)
            return try await seatsPage(
                session: session, tenant: tenant, project: request.uri.queryParameters.get("project_id").map { String($0) }, context: context)
        }
        console.post("seats") { request, context in
            let (session, tenant, form) = try await signedInPost(request, context)
            let project = form["project_id"]
            do {
                guard !project.isEmpty else { throw FieldError("project_id", "choose the project the seat spends from") }
                let seat = try await send(
                    .post, "/projects/\(AdminDispatch.segment(project))/seats", body: try Self.seatForm.json(form), session: session, tenant: tenant,
                    context: context)
                return done(
                    "/console/seats?project_id=\(AdminDispatch.segment(project))", "Seat issued. Copy its key now: it is shown only once.",
                    session: session, secretLabel: "Seat key for \(seat["holder"]?.stringValue ?? "")", secret: seat["key"]?.stringValue)
            } catch let refusal {
                let p = try Self.refusal(refusal)
                return try await seatsPage(session: session, tenant: tenant, project: project, context: context, form: form.echo(), error: p)
            }
        }
        console.post("seats/{project}/{seat}/{action}") { request, context in
            let (session, tenant, form) = try await signedInPost(request, context)
            let project = AdminDispatch.segment(try context.parameters.require("project"))
            let seat = AdminDispatch.segment(try context.parameters.require("seat"))
            let path = "/projects/\(project)/seats/\(seat)"
            let back = "/console/seats?project_id=\(project)"
            switch try context.parameters.require("action") {
            case "extend":
                do {
                    let body = try FormSpec(fields: [("expires_at", .date)]).json(form)
                    guard body["expires_at"] != nil else { throw FieldError("expires_at", "choose the new expiry date") }
                    _ = try await send(.patch, path, body: body, session: session, tenant: tenant, context: context)
                } catch let refusal {
                    let p = try Self.refusal(refusal)
                    return try await seatsPage(
                        session: session, tenant: tenant, project: form["project_id"], context: context, error: p, failedSeat: seat)
                }
                return done(back, "Seat extended.", session: session)
            case "revoke":
                _ = try await send(.post, path + "/revoke", session: session, tenant: tenant, context: context)
                return done(back, "Seat revoked: its key no longer works.", session: session)
            case "rotate":
                let rotated = try await send(.post, path + "/rotate", session: session, tenant: tenant, context: context)
                return done(
                    back, "New seat key issued; the old one keeps working for the grace period.", session: session,
                    secretLabel: "New key for \(rotated["holder"]?.stringValue ?? "")", secret: rotated["key"]?.stringValue)
            default:
                throw ProblemError.notFound("action")
            }
        }
    }

    func seatsPage(
        session: ConsoleSession, tenant: String, project: String?, context: AppRequestContext, form: [String: Any] = [:],
        error: ProblemError? = nil, failedSeat: String? = nil
    ) async throws -> Response {
        let projects = try await get("/projects", [("limit", "1000"), ("status", "active")], session: session, tenant: tenant, context: context)
        let rows = Self.tree(TemplateData.list(projects), id: "id", parent: "parent_id").map(\.0)
        let chosen = project.flatMap { p in rows.contains { $0["id"] as? String == p } ? p : nil } ?? rows.first?["id"] as? String
        var seats: [[String: Any]] = []
        var more = false
        if let chosen {
            let list = try await get(
                "/projects/\(AdminDispatch.segment(chosen))/seats", [("limit", "500")], session: session, tenant: tenant, context: context)
            let now = state.clock.nowMs()
            more = list["next_cursor"]?.stringValue != nil
            seats = TemplateData.list(list).map { s in
                var s = s
                let state = s["state"] as? String ?? ""
                let expires = (s["expires_at"] as? String).flatMap(Timestamp.parse) ?? 0
                s["active"] = state == "active"
                s["expired"] = state == "expired"
                s["revoked"] = state == "revoked"
                s["expiring"] = state == "active" && expires - now < Self.expiringSoonMs
                s["expires_date"] = String((s["expires_at"] as? String ?? "").prefix(10))
                s["failed"] = failedSeat == s["id"] as? String
                return s
            }
        }
        var data: [String: Any] = [
            "projects": Self.options(rows, selected: chosen), "project_id": chosen ?? "", "has_project": chosen != nil, "seats": seats,
            "has_seats": !seats.isEmpty, "form": form, "more_seats": more,
            "default_expiry": String(Timestamp.format(state.clock.nowMs() + 30 * 86_400_000).prefix(10)),
        ]
        var errors = Self.errorData(error)
        // An extend refusal belongs to its seat's row, not to the issue form.
        if failedSeat != nil { errors["extend_errors"] = errors.removeValue(forKey: "errors") }
        data.merge(errors) { $1 }
        return page("seats", title: "Virtual seats", session: session, tenant: tenant, data: data, status: error?.status ?? .ok)
    }
}
