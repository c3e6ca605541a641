import HashTreeCollections
import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `/admin/v1/tenants/{tenant_id}/projects/{project_id}/seats`: virtual contractor seats.
struct SeatsController {
    let env: AdminEnvironment
    let engine: AdmissionEngine
    let ledger: LedgerWriter

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.post("tenants/{tenant_id}/projects/{project_id}/seats", use: create)
        admin.get("tenants/{tenant_id}/projects/{project_id}/seats", use: list)
        admin.get("tenants/{tenant_id}/projects/{project_id}/seats/{seat_id}", use: get)
        admin.patch("tenants/{tenant_id}/projects/{project_id}/seats/{seat_id}", use: update)
        admin.post("tenants/{tenant_id}/projects/{project_id}/seats/{seat_id}/revoke", use: revoke)
        admin.post("tenants/{tenant_id}/projects/{project_id}/seats/{seat_id}/rotate", use: rotate)
    }

    typealias Usage = SeatUsage

    func rep(_ s: Seat, usage: Usage, secret: String? = nil) -> JSONValue {
        let now = env.now
        let counter = engine.counterSnapshot(.seat(s.id))
        let periodSpend = counter.map { $0.period.contains(now) ? $0.spent : 0 } ?? 0
        return .compact([
            ("id", .string(s.id)), ("tenant_id", .string(s.tenantId)), ("project_id", .string(s.projectId)), ("holder", .string(s.holder)),
            ("contact", .string(s.contact)), ("note", .string(s.note)), ("prefix", .string(s.prefix)), ("key", secret.map(JSONValue.string)),
            ("state", .string(s.state(at: now).rawValue)), ("expires_at", Rep.time(s.expiresAt)), ("budget_cap_micros", .int(s.budgetCapMicros)),
            ("rpm", .int(s.rpm)), ("allowed_models", .strings(s.allowedModels)), ("previous_key_valid_until", Rep.time(s.previousValidUntil)),
            ("revoked_at", Rep.time(s.revokedAt)), ("expired_at", Rep.time(s.expiredAt)), ("spent_micros", .int(periodSpend)),
            ("total_spent_micros", .int(usage.totalMicros)), ("requests", .int(usage.requests)), ("last_used_at", Rep.time(usage.lastUsed)),
            ("created_by", .string(s.createdBy)), ("created_at", Rep.time(s.createdAt)), ("updated_at", Rep.time(s.updatedAt)),
        ])
    }

    func usage(_ tenantId: String, seatIds: [String]) async throws -> [String: Usage] {
        guard !seatIds.isEmpty else { return [:] }
        await ledger.flush()
        return try await env.reads.read { conn in try conn.seatUsage(tenantId: tenantId, seatIds: seatIds) }
    }

    /// Reads the seat's expiry (a time or a duration) and caps, checked against the tenant and project.
    static func read(_ b: ObjectReader, into s: inout Seat, project: Project, tenant: Tenant, now: Int64, creating: Bool) throws {
        s.holder = try b.required("holder", Field.name)
        s.contact = try b.optional("contact", Field.string(maxLength: 200, allowEmpty: true)) ?? ""
        s.note = try b.optional("note", Field.text) ?? ""
        let maxDuration = tenant.settings.maxSeatDurationSeconds
        if let seconds = try b.optional("duration_seconds", Field.int(60...(3650 * 86_400))) {
            s.expiresAt = now + seconds * 1000
        } else if let at = try b.optional("expires_at", Field.timestamp) {
            s.expiresAt = at
        } else if creating {
            throw FieldError("expires_at", "give expires_at (a time) or duration_seconds")
        }
        guard s.expiresAt > now else { throw FieldError("expires_at", "must be in the future") }
        guard s.expiresAt <= now + maxDuration * 1000 else {
            throw FieldError("expires_at", "is beyond the tenant's maximum seat lifetime of \(maxDuration / 86_400) days")
        }
        s.budgetCapMicros = try b.optional("budget_cap_micros", Field.micros)
        s.rpm = try b.optional("rpm", Field.positiveCount)
        s.allowedModels = try b.optional("allowed_models", Field.modelPatterns) ?? []
        for (i, m) in s.allowedModels.enumerated() where !ModelPattern.allowed(m, by: project.allowedModels) {
            throw FieldError("allowed_models[\(i)]", "'\(m)' is not among the project's allowed models")
        }
    }

    static let writable: Set<String> = [
        "holder", "contact", "note", "expires_at", "duration_seconds", "budget_cap_micros", "rpm", "allowed_models",
    ]

    func context(_ ctx: AppRequestContext) throws -> (String, Project, Tenant) {
        let tenantId = try ctx.tenantScope(env.catalog)
        let projectId = try ctx.parameters.require("project_id")
        let catalog = env.catalog.current
        guard let project = catalog.projects[projectId], project.tenantId == tenantId, let tenant = catalog.tenants[tenantId] else {
            throw ProblemError.notFound("project '\(projectId.prefix(64))'")
        }
        return (tenantId, project, tenant)
    }

    @Sendable func create(_ request: Request, context ctx: AppRequestContext) async throws -> Response {
        let (tenantId, project, tenant) = try context(ctx)
        guard project.status == .active else { throw ProblemError.conflict("the project is archived") }
        let body = try await env.body(request)
        let now = env.now
        let who = try ctx.admin
        let secret = SecretKind.seatKey.generate()
        var seat = Seat(
            id: Identifier.make("seat"), tenantId: tenantId, projectId: project.id, holder: "", prefix: SecretDigest.displayPrefix(secret),
            expiresAt: 0, createdBy: who.actor, createdAt: now, updatedAt: now)
        try validating {
            try body.rejectUnknown(Self.writable)
            try Self.read(body, into: &seat, project: project, tenant: tenant, now: now, creating: true)
        }
        try await env.changes.write { [seat] conn in
            try conn.insertSeat(seat, digest: SecretDigest.of(secret))
            try env.audit(conn, who, tenant: tenantId, "seat.issue", "seat", seat.id, rep(seat, usage: Usage()))
        }
        return JSONResponse.make(rep(seat, usage: Usage(), secret: secret), status: .created)
    }

    @Sendable func list(_ request: Request, context ctx: AppRequestContext) async throws -> Response {
        let (tenantId, project, _) = try context(ctx)
        let filter = try request.query.enumeration("state", SeatState.self)
        let (limit, after, now) = (try request.query.limit, try request.query.cursor(), env.now)
        let rows = try await env.reads.read { conn in
            try conn.seats(tenantId: tenantId, projectId: project.id, state: filter, now: now, after: after, limit: limit + 1)
        }
        let page = Array(rows.prefix(limit))
        let usage = try await usage(tenantId, seatIds: page.map(\.seat.id))
        return JSONResponse.list(
            page.map { rep($0.seat, usage: usage[$0.seat.id] ?? Usage()) },
            nextCursor: rows.count > limit ? page.last.map { String($0.position) } : nil)
    }

    func load(_ tenantId: String, _ project: Project, _ ctx: AppRequestContext) async throws -> Seat {
        let id = try ctx.parameters.require("seat_id")
        guard let s = try await env.reads.read({ conn in try conn.seat(tenantId: tenantId, id: id) }), s.projectId == project.id else {
            throw ProblemError.notFound("seat '\(id.prefix(64))'")
        }
        return s
    }

    @Sendable func get(_ request: Request, context ctx: AppRequestContext) async throws -> Response {
        let (tenantId, project, _) = try context(ctx)
        let seat = try await load(tenantId, project, ctx)
        return JSONResponse.make(rep(seat, usage: try await usage(tenantId, seatIds: [seat.id])[seat.id] ?? Usage()))
    }

    /// Extends a seat or changes its caps. An expired seat can be extended; a revoked one cannot.
    @Sendable func update(_ request: Request, context ctx: AppRequestContext) async throws -> Response {
        let (tenantId, project, tenant) = try context(ctx)
        let current = try await load(tenantId, project, ctx)
        guard current.revokedAt == nil else { throw ProblemError.conflict("the seat is revoked; issue a new one") }
        let body = try await env.body(request)
        let now = env.now
        var seat = current
        let writable: JSONValue = .compact([
            ("holder", .string(current.holder)), ("contact", .string(current.contact)), ("note", .string(current.note)),
            ("budget_cap_micros", current.budgetCapMicros.map(JSONValue.int)), ("rpm", current.rpm.map(JSONValue.int)),
            ("allowed_models", .strings(current.allowedModels)),
        ])
        try validating {
            try body.rejectUnknown(Self.writable)
            let merged = try ObjectReader(JSONMergePatch.apply(.object(body.members), to: writable))
            try Self.read(merged, into: &seat, project: project, tenant: tenant, now: now, creating: false)
        }
        if seat.expiresAt > now { seat.expiredAt = nil }
        seat.updatedAt = now
        let who = try ctx.admin
        let action = seat.expiresAt != current.expiresAt ? "seat.extend" : "seat.update"
        try await env.changes.write { [seat] conn in
            try conn.updateSeat(seat)
            try env.audit(conn, who, tenant: tenantId, action, "seat", seat.id, Rep.diff(rep(current, usage: Usage()), rep(seat, usage: Usage())))
        }
        return JSONResponse.make(rep(seat, usage: try await usage(tenantId, seatIds: [seat.id])[seat.id] ?? Usage()))
    }

    @Sendable func revoke(_ request: Request, context ctx: AppRequestContext) async throws -> Response {
        let (tenantId, project, _) = try context(ctx)
        var seat = try await load(tenantId, project, ctx)
        let who = try ctx.admin
        if seat.revokedAt == nil {
            seat.revokedAt = env.now
            seat.updatedAt = env.now
            try await env.changes.write { [seat] conn in
                try conn.updateSeat(seat)
                try env.audit(conn, who, tenant: tenantId, "seat.revoke", "seat", seat.id, ["holder": .string(seat.holder)])
            }
        }
        return JSONResponse.make(rep(seat, usage: Usage()))
    }

    /// Issues a new key; the old one keeps working for `grace_seconds` (default one hour, at most a week).
    @Sendable func rotate(_ request: Request, context ctx: AppRequestContext) async throws -> Response {
        let (tenantId, project, _) = try context(ctx)
        var seat = try await load(tenantId, project, ctx)
        guard seat.revokedAt == nil else { throw ProblemError.conflict("the seat is revoked") }
        let b = try await env.optionalBody(request)
        let grace = try validating { () throws -> Int64 in
            try b?.rejectUnknown(["grace_seconds"])
            return try b?.optional("grace_seconds", Field.int(0...(7 * 86_400))) ?? 3600
        }
        let now = env.now
        let secret = SecretKind.seatKey.generate()
        let prefix = SecretDigest.displayPrefix(secret)
        seat.previousValidUntil = now + grace * 1000
        seat.prefix = prefix
        seat.updatedAt = now
        let who = try ctx.admin
        try await env.changes.write { [seat] conn in
            try conn.rotateSeatKey(seat, newDigest: SecretDigest.of(secret), newPrefix: prefix)
            try env.audit(
                conn, who, tenant: tenantId, "seat.rotate", "seat", seat.id,
                ["prefix": .string(prefix), "previous_key_valid_until": Rep.time(seat.previousValidUntil)])
        }
        return JSONResponse.make(rep(seat, usage: Usage(), secret: secret))
    }
}
