import HashTreeCollections
import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `/admin/v1/tenants/{tenant_id}/approvals`: requests to exceed a budget or use a model, and an
/// admin's grants (temporary, time-boxed).
struct ApprovalsController {
    let env: AdminEnvironment

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.get("tenants/{tenant_id}/approvals", use: listApprovals)
        admin.post("tenants/{tenant_id}/approvals", use: grant)
        admin.get("tenants/{tenant_id}/approvals/{approval_id}", use: getApproval)
        admin.post("tenants/{tenant_id}/approvals/{approval_id}/approve", use: approve)
        admin.post("tenants/{tenant_id}/approvals/{approval_id}/deny", use: deny)
    }

    static func rep(_ a: Approval) -> JSONValue {
        [
            "id": .string(a.id), "tenant_id": .string(a.tenantId), "project_id": .string(a.projectId), "key_id": .string(a.keyId),
            "requested_by": .string(a.requestedBy), "model": .string(a.model), "detail": .string(a.detail), "status": .string(a.status.rawValue),
            "requested_at": Rep.time(a.requestedAt), "decided_at": Rep.time(a.decidedAt), "decided_by": .string(a.decidedBy),
            "grant_micros": .int(a.grantMicros), "grant_model": .string(a.grantModel), "grant_until": Rep.time(a.grantUntil), "note": .string(a.note),
        ]
    }

    @Sendable func listApprovals(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let status = try request.query.enumeration("status", Approval.Status.self)
        let (limit, before) = (try request.query.limit, try request.query.cursor())
        let rows = try await env.reads.read { conn in try conn.approvals(tenantId: tenantId, status: status, before: before, limit: limit + 1) }
        let page = Array(rows.prefix(limit))
        return JSONResponse.list(page.map { Self.rep($0.approval) }, nextCursor: rows.count > limit ? page.last.map { String($0.position) } : nil)
    }

    @Sendable func getApproval(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        return JSONResponse.make(Self.rep(try await loadApproval(tenantId, try context.parameters.require("approval_id"))))
    }

    func loadApproval(_ tenantId: String, _ id: String) async throws -> Approval {
        guard let a = try await env.reads.read({ conn in try conn.approval(tenantId: tenantId, id: id) }) else {
            throw ProblemError.notFound("approval '\(id.prefix(64))'")
        }
        return a
    }

    /// Reads what a grant gives and until when (at most 90 days).
    func readGrant(_ b: ObjectReader, now: Int64) throws -> (micros: Int64?, model: String?, until: Int64, note: String) {
        let micros = try b.optional("grant_micros", Field.micros)
        let model = try b.optional("model", Field.string(maxLength: 200))
        if micros == nil && model == nil { throw FieldError("grant_micros", "give grant_micros, model, or both") }
        if let model, !ModelPattern.isValid(model) { throw FieldError("model", "must be a model name or pattern") }
        let until: Int64
        if let at = try b.optional("until", Field.timestamp) {
            until = at
        } else if let seconds = try b.optional("duration_seconds", Field.int(60...(90 * 86_400))) {
            until = now + seconds * 1000
        } else {
            throw FieldError("until", "give until (a time) or duration_seconds")
        }
        guard until > now, until <= now + 90 * 86_400_000 else { throw FieldError("until", "must be in the next 90 days") }
        return (micros, model, until, try b.optional("note", Field.text) ?? "")
    }

    @Sendable func approve(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        var a = try await loadApproval(tenantId, try context.parameters.require("approval_id"))
        guard a.status == .open else { throw ProblemError.conflict("the approval was already \(a.status.rawValue)") }
        let body = try await env.body(request)
        let now = env.now
        let g = try validating {
            try body.rejectUnknown(["grant_micros", "model", "until", "duration_seconds", "note"])
            return try readGrant(body, now: now)
        }
        let who = try context.admin
        a.status = .approved
        a.decidedAt = now
        a.decidedBy = who.actor
        a.grantMicros = g.micros
        a.grantModel = g.model
        a.grantUntil = g.until
        a.note = g.note
        try await env.changes.write { [a] conn in
            try conn.updateApproval(a)
            try env.audit(conn, who, tenant: tenantId, "approval.approve", "approval", a.id, Self.rep(a))
        }
        return JSONResponse.make(Self.rep(a))
    }

    @Sendable func deny(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        var a = try await loadApproval(tenantId, try context.parameters.require("approval_id"))
        guard a.status == .open else { throw ProblemError.conflict("the approval was already \(a.status.rawValue)") }
        let b = try await env.optionalBody(request)
        let note = try validating { () throws -> String in
            try b?.rejectUnknown(["note"])
            return try b?.optional("note", Field.text) ?? ""
        }
        let who = try context.admin
        a.status = .denied
        a.decidedAt = env.now
        a.decidedBy = who.actor
        a.note = note
        try await env.changes.write { [a] conn in
            try conn.updateApproval(a)
            try env.audit(conn, who, tenant: tenantId, "approval.deny", "approval", a.id, ["note": .string(note)])
        }
        return JSONResponse.make(Self.rep(a))
    }

    /// An admin grants a temporary increase or model directly, without a request.
    @Sendable func grant(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let body = try await env.body(request)
        let now = env.now
        let who = try context.admin
        let (projectId, g) = try validating {
            try body.rejectUnknown(["project_id", "grant_micros", "model", "until", "duration_seconds", "note"])
            let projectId = try body.required("project_id", Field.string(maxLength: 64))
            guard env.catalog.current.projects[projectId]?.tenantId == tenantId else {
                throw FieldError("project_id", "no project '\(projectId)' in this tenant")
            }
            return (projectId, try readGrant(body, now: now))
        }
        let a = Approval(
            id: Identifier.make("apr"), tenantId: tenantId, projectId: projectId, requestedBy: who.actor, detail: "granted directly",
            status: .approved, requestedAt: now, decidedAt: now, decidedBy: who.actor, grantMicros: g.micros, grantModel: g.model,
            grantUntil: g.until, note: g.note)
        try await env.changes.write { conn in
            try conn.insertApproval(a)
            try env.audit(conn, who, tenant: tenantId, "approval.grant", "approval", a.id, Self.rep(a))
        }
        return JSONResponse.make(Self.rep(a), status: .created)
    }
}
