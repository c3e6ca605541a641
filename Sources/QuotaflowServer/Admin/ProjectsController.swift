import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `/admin/v1/tenants/{tenant_id}/projects`: workspaces and cost centers with their budgets, limits and pools.
struct ProjectsController {
    let env: AdminEnvironment

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.post("tenants/{tenant_id}/projects", use: create)
        admin.get("tenants/{tenant_id}/projects", use: list)
        admin.get("tenants/{tenant_id}/projects/{project_id}", use: get)
        admin.patch("tenants/{tenant_id}/projects/{project_id}", use: update)
        admin.post("tenants/{tenant_id}/projects/{project_id}/archive") { req, ctx in try await setStatus(req, ctx, .archived) }
        admin.post("tenants/{tenant_id}/projects/{project_id}/unarchive") { req, ctx in try await setStatus(req, ctx, .active) }
    }

    static let writable: Set<String> = [
        "name", "parent_id", "pool_ids", "allowed_models", "overflow_allowed", "overflow_cap_micros", "budget", "request_limits",
        "rate_limits", "enforcement", "attributes",
    ]

    static func writableJSON(_ p: Project) -> JSONValue {
        .object((Rep.project(p).objectMembers ?? []).filter { writable.contains($0.0) && !$0.1.isNull })
    }

    /// Reads a project from a body, looking up its parent chain and pools by id (never the whole tenant).
    static func read(_ b: ObjectReader, into p: inout Project, _ conn: StoreConnection) throws {
        let tenantId = p.tenantId
        try read(
            b, into: &p, parent: { id in try conn.project(tenantId: tenantId, id: id) },
            hasPool: { id in try conn.pool(tenantId: tenantId, id: id) != nil })
    }

    /// Reads a project from a body; `parent` finds a project of the tenant by id (for the chain) and
    /// `hasPool` tells whether a pool exists.
    static func read(
        _ b: ObjectReader, into p: inout Project, parent lookup: (String) throws -> Project?, hasPool: (String) throws -> Bool
    ) throws {
        try b.rejectUnknown(Self.writable)
        p.name = try b.required("name", Field.name)
        p.parentId = try b.optional("parent_id", Field.string(maxLength: 64))
        if let parent = p.parentId {
            guard try lookup(parent) != nil else { throw FieldError(b.fieldName("parent_id"), "no project '\(parent)' in this tenant") }
            // Walk up from the parent: reaching this project again would make a cycle.
            var seen: Set<String> = [p.id]
            var next: String? = parent
            while let id = next {
                if seen.contains(id) {
                    throw FieldError(b.fieldName("parent_id"), "would make the project its own ancestor (a cycle in the hierarchy)")
                }
                seen.insert(id)
                next = try lookup(id)?.parentId
            }
        }
        p.poolIds = try b.optional("pool_ids", Field.array(maxCount: 100, Field.string(maxLength: 64))) ?? []
        for (i, poolId) in p.poolIds.enumerated() where try !hasPool(poolId) {
            throw FieldError(b.fieldName("pool_ids") + "[\(i)]", "no pool '\(poolId)' in this tenant")
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
        let tenantId = try context.tenantScope(env.catalog)
        let body = try await env.body(request)
        let now = env.now
        let json = JSONValue.object(body.members)
        let project = try await env.reads.read { conn in
            var project = Project(id: Identifier.make("prj"), tenantId: tenantId, name: "", createdAt: now, updatedAt: now)
            try validating { try Self.read(try ObjectReader(json), into: &project, conn) }
            return project
        }
        let who = try context.admin
        try await env.changes.write { [project] conn in
            try conn.insertProject(project)
            try env.audit(conn, who, tenant: tenantId, "project.create", "project", project.id, Rep.project(project))
        }
        return JSONResponse.make(Rep.project(project), status: .created)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let status = try request.query.enumeration("status", ProjectStatus.self)
        let (limit, after) = (try request.query.limit, try request.query.string("cursor", maxLength: 200))
        let rows = try await env.reads.read { conn in try conn.projects(tenantId: tenantId, status: status, after: after, limit: limit + 1) }
        let page = Array(rows.prefix(limit))
        return JSONResponse.list(page.map(Rep.project), nextCursor: rows.count > limit ? page.last?.name : nil)
    }

    func load(_ tenantId: String, _ id: String) async throws -> Project {
        guard let p = try await env.reads.read({ conn in try conn.project(tenantId: tenantId, id: id) }) else {
            throw ProblemError.notFound("project '\(id.prefix(64))'")
        }
        return p
    }

    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        return JSONResponse.make(Rep.project(try await load(tenantId, try context.parameters.require("project_id"))))
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let current = try await load(tenantId, try context.parameters.require("project_id"))
        let body = try await env.body(request)
        let patch = JSONValue.object(body.members)
        var updated = try await env.reads.read { conn in
            var updated = current
            try validating {
                let merged = try ObjectReader(JSONMergePatch.apply(patch, to: Self.writableJSON(current)))
                try Self.read(merged, into: &updated, conn)
            }
            return updated
        }
        updated.updatedAt = env.now
        let who = try context.admin
        try await env.changes.write { [updated] conn in
            try conn.updateProject(updated)
            try env.audit(conn, who, tenant: tenantId, "project.update", "project", updated.id, Rep.diff(Rep.project(current), Rep.project(updated)))
        }
        return JSONResponse.make(Rep.project(updated))
    }

    func setStatus(_ request: Request, _ context: AppRequestContext, _ status: ProjectStatus) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        var project = try await load(tenantId, try context.parameters.require("project_id"))
        let who = try context.admin
        if project.status != status {
            project.status = status
            project.updatedAt = env.now
            try await env.changes.write { [project] conn in
                try conn.updateProject(project)
                try env.audit(conn, who, tenant: tenantId, status == .archived ? "project.archive" : "project.unarchive", "project", project.id)
            }
        }
        return JSONResponse.make(Rep.project(project))
    }
}

/// Order-preserving de-duplication.
func NSOrderedSetLike(_ items: [String]) -> [String] {
    var seen = Set<String>()
    return items.filter { seen.insert($0).inserted }
}
