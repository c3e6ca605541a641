import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `/admin/v1/tenants/{tenant_id}/projects` and their keys.
struct ProjectsController {
    let kit: AdminKit
    var state: AppState { kit.state }

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.post("tenants/{tenant_id}/projects", use: create)
        admin.get("tenants/{tenant_id}/projects", use: list)
        admin.get("tenants/{tenant_id}/projects/{project_id}", use: get)
        admin.patch("tenants/{tenant_id}/projects/{project_id}", use: update)
        admin.post("tenants/{tenant_id}/projects/{project_id}/archive") { req, ctx in try await setStatus(req, ctx, .archived) }
        admin.post("tenants/{tenant_id}/projects/{project_id}/unarchive") { req, ctx in try await setStatus(req, ctx, .active) }
        admin.post("tenants/{tenant_id}/projects/{project_id}/keys", use: createKey)
        admin.get("tenants/{tenant_id}/projects/{project_id}/keys", use: listKeys)
        admin.get("tenants/{tenant_id}/projects/{project_id}/keys/{key_id}", use: getKey)
        admin.patch("tenants/{tenant_id}/projects/{project_id}/keys/{key_id}", use: updateKey)
        admin.post("tenants/{tenant_id}/projects/{project_id}/keys/{key_id}/revoke", use: revokeKey)
    }

    static let writable: Set<String> = [
        "name", "parent_id", "pool_ids", "allowed_models", "overflow_allowed", "overflow_cap_micros", "budget", "request_limits",
        "rate_limits", "enforcement", "attributes",
    ]

    static func writableJSON(_ p: Project) -> JSONValue {
        .object((Rep.project(p).objectMembers ?? []).filter { writable.contains($0.0) && !$0.1.isNull })
    }

    func read(_ b: ObjectReader, into p: inout Project, tenantProjects: [Project], pools: [Pool]) throws {
        try b.rejectUnknown(Self.writable)
        p.name = try b.required("name", Field.name)
        p.parentId = try b.optional("parent_id", Field.string(maxLength: 64))
        if let parent = p.parentId {
            guard tenantProjects.contains(where: { $0.id == parent }) else { throw FieldError("parent_id", "no project '\(parent)' in this tenant") }
            // Walk up from the parent: reaching this project again would make a cycle.
            var seen: Set<String> = [p.id]
            var next: String? = parent
            while let id = next {
                if seen.contains(id) { throw FieldError("parent_id", "would make the project its own ancestor") }
                seen.insert(id)
                next = tenantProjects.first(where: { $0.id == id })?.parentId
            }
        }
        p.poolIds = try b.optional("pool_ids", Field.array(maxCount: 100, Field.string(maxLength: 64))) ?? []
        for (i, poolId) in p.poolIds.enumerated() where !pools.contains(where: { $0.id == poolId }) {
            throw FieldError("pool_ids[\(i)]", "no pool '\(poolId)' in this tenant")
        }
        p.poolIds = Array(NSOrderedSetLike(p.poolIds))
        p.allowedModels = try b.optional("allowed_models", Field.modelPatterns) ?? []
        p.overflowAllowed = try b.optional("overflow_allowed", Field.bool) ?? false
        p.overflowCapMicros = try b.optional("overflow_cap_micros", Field.micros)
        p.budget = try b.optional("budget", Budget.converter) ?? .init()
        p.requestLimits = try b.optional("request_limits", RequestLimits.converter) ?? .init()
        p.rateLimits = try b.optional("rate_limits", RateLimits.converter) ?? .init()
        p.enforcement = try b.optional("enforcement", Field.enumeration(Enforcement.self))
        p.attributes = try b.optional("attributes", Field.stringMap) ?? [:]
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let body = try await kit.body(request)
        let now = kit.now
        let (projects, pools) = try await state.db.read { conn in (try conn.projects(tenantId: tenantId), try conn.pools(tenantId: tenantId)) }
        var project = Project(id: Identifier.make("prj"), tenantId: tenantId, name: "", createdAt: now, updatedAt: now)
        try validating { try read(body, into: &project, tenantProjects: projects, pools: pools) }
        let who = try context.admin
        try await state.mutate { [project] conn in
            try conn.insertProject(project)
            try kit.audit(conn, who, tenant: tenantId, "project.create", "project", project.id, Rep.project(project))
        }
        return JSONResponse.make(Rep.project(project), status: .created)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let status = try request.query.enumeration("status", ProjectStatus.self)
        let projects = try await state.db.read { conn in try conn.projects(tenantId: tenantId) }
        return JSONResponse.list(projects.filter { status == nil || $0.status == status }.map(Rep.project))
    }

    func load(_ tenantId: String, _ id: String) async throws -> Project {
        guard let p = try await state.db.read({ conn in try conn.project(tenantId: tenantId, id: id) }) else {
            throw ProblemError.notFound("project '\(id.prefix(64))'")
        }
        return p
    }

    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        return JSONResponse.make(Rep.project(try await load(tenantId, try context.parameters.require("project_id"))))
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let current = try await load(tenantId, try context.parameters.require("project_id"))
        let body = try await kit.body(request)
        let (projects, pools) = try await state.db.read { conn in (try conn.projects(tenantId: tenantId), try conn.pools(tenantId: tenantId)) }
        var updated = current
        try validating {
            let merged = try ObjectReader(JSONMergePatch.apply(.object(body.members), to: Self.writableJSON(current)))
            try read(merged, into: &updated, tenantProjects: projects, pools: pools)
        }
        updated.updatedAt = kit.now
        let who = try context.admin
        try await state.mutate { [updated] conn in
            try conn.updateProject(updated)
            try kit.audit(conn, who, tenant: tenantId, "project.update", "project", updated.id, Rep.diff(Rep.project(current), Rep.project(updated)))
        }
        return JSONResponse.make(Rep.project(updated))
    }

    func setStatus(_ request: Request, _ context: AppRequestContext, _ status: ProjectStatus) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        var project = try await load(tenantId, try context.parameters.require("project_id"))
        let who = try context.admin
        if project.status != status {
            project.status = status
            project.updatedAt = kit.now
            try await state.mutate { [project] conn in
                try conn.updateProject(project)
                try kit.audit(conn, who, tenant: tenantId, status == .archived ? "project.archive" : "project.unarchive", "project", project.id)
            }
        }
        return JSONResponse.make(Rep.project(project))
    }

    // MARK: keys

    static func readKey(_ b: ObjectReader, into k: inout ProjectKey) throws {
        try b.rejectUnknown(["name", "allowed_models", "budget_cap_micros", "rpm"])
        k.name = try b.required("name", Field.name)
        k.allowedModels = try b.optional("allowed_models", Field.modelPatterns) ?? []
        k.budgetCapMicros = try b.optional("budget_cap_micros", Field.micros)
        k.rpm = try b.optional("rpm", Field.positiveCount)
    }

    @Sendable func createKey(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let project = try await load(tenantId, try context.parameters.require("project_id"))
        guard project.status == .active else { throw ProblemError.conflict("the project is archived; unarchive it before issuing keys") }
        let body = try await kit.body(request)
        let who = try context.admin
        let secret = SecretKind.projectKey.generate()
        var key = ProjectKey(
            id: Identifier.make("key"), tenantId: tenantId, projectId: project.id, name: "", prefix: SecretDigest.displayPrefix(secret),
            createdBy: who.actor, createdAt: kit.now)
        try validating { try Self.readKey(body, into: &key) }
        try await state.mutate { [key] conn in
            try conn.insertProjectKey(key, digest: SecretDigest.of(secret))
            try kit.audit(conn, who, tenant: tenantId, "key.create", "project_key", key.id, Rep.projectKey(key))
        }
        return JSONResponse.make(Rep.projectKey(key, secret: secret), status: .created)
    }

    @Sendable func listKeys(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let project = try await load(tenantId, try context.parameters.require("project_id"))
        let keys = try await state.db.read { conn in try conn.projectKeys(tenantId: tenantId, projectId: project.id) }
        return JSONResponse.list(keys.map { Rep.projectKey($0) })
    }

    func loadKey(_ tenantId: String, _ context: AppRequestContext) async throws -> ProjectKey {
        let projectId = try context.parameters.require("project_id")
        let keyId = try context.parameters.require("key_id")
        guard let key = try await state.db.read({ conn in try conn.projectKey(tenantId: tenantId, id: keyId) }), key.projectId == projectId else {
            throw ProblemError.notFound("key '\(keyId.prefix(64))' in project '\(projectId.prefix(64))'")
        }
        return key
    }

    @Sendable func getKey(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        return JSONResponse.make(Rep.projectKey(try await loadKey(tenantId, context)))
    }

    @Sendable func updateKey(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let current = try await loadKey(tenantId, context)
        guard current.revokedAt == nil else { throw ProblemError.conflict("the key is revoked") }
        let body = try await kit.body(request)
        var updated = current
        let writable: JSONValue = .compact([
            ("name", .string(current.name)), ("allowed_models", .strings(current.allowedModels)),
            ("budget_cap_micros", current.budgetCapMicros.map(JSONValue.int)), ("rpm", current.rpm.map(JSONValue.int)),
        ])
        try validating { try Self.readKey(try ObjectReader(JSONMergePatch.apply(.object(body.members), to: writable)), into: &updated) }
        let who = try context.admin
        try await state.mutate { [updated] conn in
            try conn.updateProjectKey(updated)
            try kit.audit(conn, who, tenant: tenantId, "key.update", "project_key", updated.id, Rep.diff(Rep.projectKey(current), Rep.projectKey(updated)))
        }
        return JSONResponse.make(Rep.projectKey(updated))
    }

    @Sendable func revokeKey(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        var key = try await loadKey(tenantId, context)
        let who = try context.admin
        if key.revokedAt == nil {
            key.revokedAt = kit.now
            try await state.mutate { [key] conn in
                try conn.updateProjectKey(key)
                try kit.audit(conn, who, tenant: tenantId, "key.revoke", "project_key", key.id)
            }
        }
        return JSONResponse.make(Rep.projectKey(key))
    }
}

/// Order-preserving de-duplication.
func NSOrderedSetLike(_ items: [String]) -> [String] {
    var seen = Set<String>()
    return items.filter { seen.insert($0).inserted }
}
