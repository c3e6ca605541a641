import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `/admin/v1/tenants`: companies (the operator creates, lists, disables and enables them; a tenant
/// admin may change its own settings).
struct TenantsController {
    let env: AdminEnvironment

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.post("tenants", use: create)
        admin.get("tenants", use: list)
        admin.get("tenants/{tenant_id}", use: get)
        admin.patch("tenants/{tenant_id}", use: update)
        admin.post("tenants/{tenant_id}/disable") { req, ctx in try await setStatus(req, ctx, .disabled) }
        admin.post("tenants/{tenant_id}/enable") { req, ctx in try await setStatus(req, ctx, .active) }
    }

    static let writable: Set<String> = ["name", "status", "settings"]

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        try context.requireOperator()
        let body = try await env.body(request)
        let now = env.now
        let tenant = try validating {
            try body.rejectUnknown(["name", "settings"])
            return Tenant(
                id: Identifier.make("ten"), name: try body.required("name", Field.name),
                settings: try body.optional("settings", TenantSettings.converter) ?? .init(), createdAt: now, updatedAt: now)
        }
        let who = try context.admin
        try await env.changes.write { conn in
            try conn.insertTenant(tenant)
            for entry in PricingTable.listPrices { try conn.upsertPriceEntry(tenantId: tenant.id, entry, at: now) }
            try env.audit(conn, who, tenant: tenant.id, "tenant.create", "tenant", tenant.id, Rep.tenant(tenant))
        }
        return JSONResponse.make(Rep.tenant(tenant), status: .created)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        try context.requireOperator()
        let limit = try request.query.limit
        let cursor = try request.query.string("cursor", maxLength: 64)
        let tenants = try await env.reads.read { conn in try conn.tenants(after: cursor, limit: limit + 1) }
        let page = Array(tenants.prefix(limit))
        return JSONResponse.list(page.map(Rep.tenant), nextCursor: tenants.count > limit ? page.last?.id : nil)
    }

    func load(_ tenantId: String) async throws -> Tenant {
        guard let t = try await env.reads.read({ conn in try conn.tenant(id: tenantId) }) else {
            throw ProblemError.notFound("tenant '\(tenantId)'")
        }
        return t
    }

    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Response {
        JSONResponse.make(Rep.tenant(try await load(try context.tenantScope(env.catalog))))
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let who = try context.admin
        let body = try await env.body(request)
        if !who.isOperator, body["name"] != nil || body["status"] != nil {
            throw ProblemError.forbidden("a tenant admin may change settings only; name and status need the operator token")
        }
        let current = try await load(tenantId)
        let writable: JSONValue = ["name": .string(current.name), "status": .string(current.status.rawValue), "settings": current.settings.json()]
        let merged = try ObjectReader(JSONMergePatch.apply(.object(body.members), to: writable))
        var updated = current
        try validating {
            try merged.rejectUnknown(Self.writable)
            updated.name = try merged.required("name", Field.name)
            updated.status = try merged.optional("status", Field.enumeration(TenantStatus.self)) ?? .active
            updated.settings = try merged.optional("settings", TenantSettings.converter) ?? .init()
        }
        updated.updatedAt = env.now
        try await env.changes.write { [updated] conn in
            try conn.updateTenant(updated)
            try env.audit(conn, who, tenant: tenantId, "tenant.update", "tenant", tenantId, Rep.diff(Rep.tenant(current), Rep.tenant(updated)))
        }
        return JSONResponse.make(Rep.tenant(updated))
    }

    func setStatus(_ request: Request, _ context: AppRequestContext, _ status: TenantStatus) async throws -> Response {
        try context.requireOperator()
        let tenantId = try context.tenantScope(env.catalog)
        var tenant = try await load(tenantId)
        let who = try context.admin
        if tenant.status != status {
            tenant.status = status
            tenant.updatedAt = env.now
            try await env.changes.write { [tenant] conn in
                try conn.updateTenant(tenant)
                try env.audit(conn, who, tenant: tenantId, status == .disabled ? "tenant.disable" : "tenant.enable", "tenant", tenantId)
            }
        }
        return JSONResponse.make(Rep.tenant(tenant))
    }
}
