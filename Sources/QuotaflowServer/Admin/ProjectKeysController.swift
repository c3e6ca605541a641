import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `/admin/v1/tenants/{tenant_id}/projects/{project_id}/keys`: long-lived data-plane keys of a project.
struct ProjectKeysController {
    let env: AdminEnvironment

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.post("tenants/{tenant_id}/projects/{project_id}/keys", use: createKey)
        admin.get("tenants/{tenant_id}/projects/{project_id}/keys", use: listKeys)
        admin.get("tenants/{tenant_id}/projects/{project_id}/keys/{key_id}", use: getKey)
        admin.patch("tenants/{tenant_id}/projects/{project_id}/keys/{key_id}", use: updateKey)
        admin.post("tenants/{tenant_id}/projects/{project_id}/keys/{key_id}/revoke", use: revokeKey)
    }

    func load(_ tenantId: String, _ id: String) async throws -> Project {
        guard let p = try await env.reads.read({ conn in try conn.project(tenantId: tenantId, id: id) }) else {
            throw ProblemError.notFound("project '\(id.prefix(64))'")
        }
        return p
    }

    static func readKey(_ b: ObjectReader, into k: inout ProjectKey) throws {
        try b.rejectUnknown(["name", "allowed_models", "budget_cap_micros", "rpm"])
        k.name = try b.required("name", Field.name)
        k.allowedModels = try b.optional("allowed_models", Field.modelPatterns) ?? []
        k.budgetCapMicros = try b.optional("budget_cap_micros", Field.micros)
        k.rpm = try b.optional("rpm", Field.positiveCount)
    }

    @Sendable func createKey(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let project = try await load(tenantId, try context.parameters.require("project_id"))
        guard project.status == .active else { throw ProblemError.conflict("the project is archived; unarchive it before issuing keys") }
        let body = try await env.body(request)
        let who = try context.admin
        let secret = SecretKind.projectKey.generate()
        var key = ProjectKey(
            id: Identifier.make("key"), tenantId: tenantId, projectId: project.id, name: "", prefix: SecretDigest.displayPrefix(secret),
            createdBy: who.actor, createdAt: env.now)
        try validating { try Self.readKey(body, into: &key) }
        try await env.changes.write { [key] conn in
            try conn.insertProjectKey(key, digest: SecretDigest.of(secret))
            try env.audit(conn, who, tenant: tenantId, "key.create", "project_key", key.id, Rep.projectKey(key))
        }
        return JSONResponse.make(Rep.projectKey(key, secret: secret), status: .created)
    }

    @Sendable func listKeys(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let project = try await load(tenantId, try context.parameters.require("project_id"))
        let (limit, after) = (try request.query.limit, try request.query.cursor())
        let rows = try await env.reads.read { conn in try conn.projectKeys(tenantId: tenantId, projectId: project.id, after: after, limit: limit + 1)
        }
        let page = Array(rows.prefix(limit))
        return JSONResponse.list(page.map { Rep.projectKey($0.key) }, nextCursor: rows.count > limit ? page.last.map { String($0.position) } : nil)
    }

    func loadKey(_ tenantId: String, _ context: AppRequestContext) async throws -> ProjectKey {
        let projectId = try context.parameters.require("project_id")
        let keyId = try context.parameters.require("key_id")
        guard let key = try await env.reads.read({ conn in try conn.projectKey(tenantId: tenantId, id: keyId) }), key.projectId == projectId else {
            throw ProblemError.notFound("key '\(keyId.prefix(64))' in project '\(projectId.prefix(64))'")
        }
        return key
    }

    @Sendable func getKey(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        return JSONResponse.make(Rep.projectKey(try await loadKey(tenantId, context)))
    }

    @Sendable func updateKey(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let current = try await loadKey(tenantId, context)
        guard current.revokedAt == nil else { throw ProblemError.conflict("the key is revoked") }
        let body = try await env.body(request)
        var updated = current
        let writable: JSONValue = .compact([
            ("name", .string(current.name)), ("allowed_models", .strings(current.allowedModels)),
            ("budget_cap_micros", current.budgetCapMicros.map(JSONValue.int)), ("rpm", current.rpm.map(JSONValue.int)),
        ])
        try validating { try Self.readKey(try ObjectReader(JSONMergePatch.apply(.object(body.members), to: writable)), into: &updated) }
        let who = try context.admin
        try await env.changes.write { [updated] conn in
            try conn.updateProjectKey(updated)
            try env.audit(
                conn, who, tenant: tenantId, "key.update", "project_key", updated.id, Rep.diff(Rep.projectKey(current), Rep.projectKey(updated)))
        }
        return JSONResponse.make(Rep.projectKey(updated))
    }

    @Sendable func revokeKey(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        var key = try await loadKey(tenantId, context)
        let who = try context.admin
        if key.revokedAt == nil {
            key.revokedAt = env.now
            try await env.changes.write { [key] conn in
                try conn.updateProjectKey(key)
                try env.audit(conn, who, tenant: tenantId, "key.revoke", "project_key", key.id)
            }
        }
        return JSONResponse.make(Rep.projectKey(key))
    }
}
