import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `/admin/v1/tenants`: companies, their admin keys and their pricing tables.
struct TenantsController {
    let kit: AdminKit
    var state: AppState { kit.state }

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.post("tenants", use: create)
        admin.get("tenants", use: list)
        admin.get("tenants/{tenant_id}", use: get)
        admin.patch("tenants/{tenant_id}", use: update)
        admin.post("tenants/{tenant_id}/disable") { req, ctx in try await setStatus(req, ctx, .disabled) }
        admin.post("tenants/{tenant_id}/enable") { req, ctx in try await setStatus(req, ctx, .active) }
        admin.post("tenants/{tenant_id}/admin-keys", use: createAdminKey)
        admin.get("tenants/{tenant_id}/admin-keys", use: listAdminKeys)
        admin.post("tenants/{tenant_id}/admin-keys/{key_id}/revoke", use: revokeAdminKey)
        admin.get("tenants/{tenant_id}/pricing", use: getPricing)
        admin.put("tenants/{tenant_id}/pricing", use: putPricing)
    }

    static let writable: Set<String> = ["name", "status", "settings"]

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        try context.requireOperator()
        let body = try await kit.body(request)
        let now = kit.now
        let tenant = try validating {
            try body.rejectUnknown(["name", "settings"])
            return Tenant(
                id: Identifier.make("ten"), name: try body.required("name", Field.name),
                settings: try body.optional("settings", TenantSettings.converter) ?? .init(), createdAt: now, updatedAt: now)
        }
        let who = try context.admin
        try await state.mutate { conn in
            try conn.insertTenant(tenant)
            for entry in PricingTable.listPrices { try conn.upsertPriceEntry(tenantId: tenant.id, entry, at: now) }
            try kit.audit(conn, who, tenant: tenant.id, "tenant.create", "tenant", tenant.id, Rep.tenant(tenant))
        }
        return JSONResponse.make(Rep.tenant(tenant), status: .created)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        try context.requireOperator()
        let limit = try request.query.limit
        let cursor = try request.query.string("cursor", maxLength: 64)
        let tenants = try await state.db.read { conn in try conn.tenants(after: cursor, limit: limit + 1) }
        let page = Array(tenants.prefix(limit))
        return JSONResponse.list(page.map(Rep.tenant), nextCursor: tenants.count > limit ? page.last?.id : nil)
    }

    func load(_ tenantId: String) async throws -> Tenant {
        guard let t = try await state.db.read({ conn in try conn.tenant(id: tenantId) }) else {
            throw ProblemError.notFound("tenant '\(tenantId)'")
        }
        return t
    }

    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Response {
        JSONResponse.make(Rep.tenant(try await load(try context.tenantScope(state))))
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let who = try context.admin
        let body = try await kit.body(request)
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
        updated.updatedAt = kit.now
        try await state.mutate { [updated] conn in
            try conn.updateTenant(updated)
            try kit.audit(conn, who, tenant: tenantId, "tenant.update", "tenant", tenantId, Rep.diff(Rep.tenant(current), Rep.tenant(updated)))
        }
        return JSONResponse.make(Rep.tenant(updated))
    }

    func setStatus(_ request: Request, _ context: AppRequestContext, _ status: TenantStatus) async throws -> Response {
        try context.requireOperator()
        let tenantId = try context.tenantScope(state)
        var tenant = try await load(tenantId)
        let who = try context.admin
        if tenant.status != status {
            tenant.status = status
            tenant.updatedAt = kit.now
            try await state.mutate { [tenant] conn in
                try conn.updateTenant(tenant)
                try kit.audit(conn, who, tenant: tenantId, status == .disabled ? "tenant.disable" : "tenant.enable", "tenant", tenantId)
            }
        }
        return JSONResponse.make(Rep.tenant(tenant))
    }

    // MARK: admin keys

    @Sendable func createAdminKey(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let body = try await kit.body(request)
        let name = try validating {
            try body.rejectUnknown(["name"])
            return try body.required("name", Field.name)
        }
        let who = try context.admin
        let secret = SecretKind.adminKey.generate()
        let key = AdminKey(
            id: Identifier.make("ak"), tenantId: tenantId, name: name, prefix: SecretDigest.displayPrefix(secret), createdBy: who.actor,
            createdAt: kit.now)
        try await state.mutate { conn in
            try conn.insertAdminKey(key, digest: SecretDigest.of(secret))
            try kit.audit(conn, who, tenant: tenantId, "admin_key.create", "admin_key", key.id, Rep.adminKey(key))
        }
        return JSONResponse.make(Rep.adminKey(key, secret: secret), status: .created)
    }

    @Sendable func listAdminKeys(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let keys = try await state.db.read { conn in try conn.adminKeys(tenantId: tenantId) }
        return JSONResponse.list(keys.map { Rep.adminKey($0) })
    }

    @Sendable func revokeAdminKey(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let keyId = try context.parameters.require("key_id")
        let who = try context.admin
        let now = kit.now
        let key = try await state.mutate { conn -> AdminKey? in
            guard var key = try conn.adminKey(tenantId: tenantId, id: keyId) else { return nil }
            if key.revokedAt == nil {
                _ = try conn.revokeAdminKey(tenantId: tenantId, id: keyId, at: now)
                key.revokedAt = now
                try kit.audit(conn, who, tenant: tenantId, "admin_key.revoke", "admin_key", keyId)
            }
            return key
        }
        guard let key else { throw ProblemError.notFound("admin key '\(keyId.prefix(64))'") }
        return JSONResponse.make(Rep.adminKey(key))
    }

    // MARK: pricing

    @Sendable func getPricing(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let entries = try await state.db.read { conn in try conn.priceEntries(tenantId: tenantId) }
        let tenant = state.catalog.tenants[tenantId]
        return JSONResponse.make(
            ["data": .array(entries.map(Rep.price)), "default_price": tenant?.settings.defaultPrice?.json() ?? .null])
    }

    /// Replaces the whole table with the `entries` given.
    @Sendable func putPricing(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let body = try await kit.body(request)
        let entries: [PriceEntry] = try validating {
            try body.rejectUnknown(["entries"])
            let list = try body.required("entries", Field.array(maxCount: 2000) { value, name in
                let r = try ObjectReader(value, path: name)
                let model = try r.required("model", Field.string(maxLength: 200))
                guard ModelPattern.isValid(model) else { throw FieldError(r.fieldName("model"), "must be a model name or pattern") }
                let rest = ObjectReader(members: r.members.filter { $0.0 != "model" }, path: name)
                return PriceEntry(model: model, price: try TokenPrice(reading: rest))
            })
            let names = list.map(\.model)
            if Set(names).count != names.count { throw FieldError("entries", "lists a model more than once") }
            return list
        }
        let who = try context.admin
        let now = kit.now
        try await state.mutate { conn in
            for old in try conn.priceEntries(tenantId: tenantId) where !entries.contains(where: { $0.model == old.model }) {
                _ = try conn.deletePriceEntry(tenantId: tenantId, model: old.model)
            }
            for entry in entries { try conn.upsertPriceEntry(tenantId: tenantId, entry, at: now) }
            try kit.audit(conn, who, tenant: tenantId, "pricing.replace", "tenant", tenantId, ["entries": .int(Int64(entries.count))])
        }
        return JSONResponse.make(["data": .array(entries.map(Rep.price))])
    }
}
