import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `/admin/v1/tenants/{tenant_id}/admin-keys`: a tenant's admin keys (shown once, stored as digests).
struct AdminKeysController {
    let env: AdminEnvironment

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.post("tenants/{tenant_id}/admin-keys", use: createAdminKey)
        admin.get("tenants/{tenant_id}/admin-keys", use: listAdminKeys)
        admin.post("tenants/{tenant_id}/admin-keys/{key_id}/revoke", use: revokeAdminKey)
    }

    @Sendable func createAdminKey(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let body = try await env.body(request)
        let (name, scope) = try validating {
            try body.rejectUnknown(["name", "scope"])
            return (try body.required("name", Field.name), try body.optional("scope", Field.enumeration(AdminScope.self)) ?? .admin)
        }
        let who = try context.admin
        let secret = SecretKind.adminKey.generate()
        let key = AdminKey(
            id: Identifier.make("ak"), tenantId: tenantId, name: name, prefix: SecretDigest.displayPrefix(secret), createdBy: who.actor,
            createdAt: env.now, scope: scope)
        try await env.changes.write { conn in
            try conn.insertAdminKey(key, digest: SecretDigest.of(secret))
            try env.audit(conn, who, tenant: tenantId, "admin_key.create", "admin_key", key.id, Rep.adminKey(key))
        }
        return JSONResponse.make(Rep.adminKey(key, secret: secret), status: .created)
    }

    @Sendable func listAdminKeys(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let (limit, after) = (try request.query.limit, try request.query.cursor())
        let rows = try await env.reads.read { conn in try conn.adminKeys(tenantId: tenantId, after: after, limit: limit + 1) }
        let page = Array(rows.prefix(limit))
        return JSONResponse.list(page.map { Rep.adminKey($0.key) }, nextCursor: rows.count > limit ? page.last.map { String($0.position) } : nil)
    }

    @Sendable func revokeAdminKey(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let keyId = try context.parameters.require("key_id")
        let who = try context.admin
        let now = env.now
        let key = try await env.changes.write { conn -> AdminKey? in
            guard var key = try conn.adminKey(tenantId: tenantId, id: keyId) else { return nil }
            if key.revokedAt == nil {
                _ = try conn.revokeAdminKey(tenantId: tenantId, id: keyId, at: now)
                key.revokedAt = now
                try env.audit(conn, who, tenant: tenantId, "admin_key.revoke", "admin_key", keyId)
            }
            return key
        }
        guard let key else { throw ProblemError.notFound("admin key '\(keyId.prefix(64))'") }
        return JSONResponse.make(Rep.adminKey(key))
    }
}
