import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `/admin/v1/tenants/{tenant_id}/pools`.
struct PoolsController {
    let env: AdminEnvironment

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.post("tenants/{tenant_id}/pools", use: create)
        admin.get("tenants/{tenant_id}/pools", use: list)
        admin.get("tenants/{tenant_id}/pools/{pool_id}", use: get)
        admin.patch("tenants/{tenant_id}/pools/{pool_id}", use: update)
        admin.delete("tenants/{tenant_id}/pools/{pool_id}", use: delete)
    }

    static func read(_ r: ObjectReader, into pool: inout Pool) throws {
        try r.rejectUnknown(["name", "description"])
        pool.name = try r.required("name", Field.name)
        pool.description = try r.optional("description", Field.text) ?? ""
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let body = try await env.body(request)
        let now = env.now
        var pool = Pool(id: Identifier.make("pool"), tenantId: tenantId, name: "", createdAt: now, updatedAt: now)
        try validating { try Self.read(body, into: &pool) }
        let who = try context.admin
        try await env.changes.write { [pool] conn in
            try conn.insertPool(pool)
            try env.audit(conn, who, tenant: tenantId, "pool.create", "pool", pool.id, Rep.pool(pool))
        }
        return JSONResponse.make(Rep.pool(pool, resourceCount: 0), status: .created)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let (limit, after) = (try request.query.limit, try request.query.string("cursor", maxLength: 200))
        let rows = try await env.reads.read { conn in
            try conn.pools(tenantId: tenantId, after: after, limit: limit + 1).map {
                ($0, try conn.liveResourceCount(tenantId: tenantId, poolId: $0.id))
            }
        }
        let page = Array(rows.prefix(limit))
        return JSONResponse.list(page.map { Rep.pool($0.0, resourceCount: $0.1) }, nextCursor: rows.count > limit ? page.last?.0.name : nil)
    }

    func load(_ tenantId: String, _ poolId: String) async throws -> (Pool, Int) {
        let found = try await env.reads.read { conn -> (Pool, Int)? in
            guard let pool = try conn.pool(tenantId: tenantId, id: poolId) else { return nil }
            return (pool, try conn.liveResourceCount(tenantId: tenantId, poolId: poolId))
        }
        guard let found else { throw ProblemError.notFound("pool '\(poolId.prefix(64))'") }
        return found
    }

    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let (pool, count) = try await load(tenantId, try context.parameters.require("pool_id"))
        return JSONResponse.make(Rep.pool(pool, resourceCount: count))
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let (current, count) = try await load(tenantId, try context.parameters.require("pool_id"))
        let body = try await env.body(request)
        var pool = current
        let merged = JSONMergePatch.apply(.object(body.members), to: ["name": .string(current.name), "description": .string(current.description)])
        try validating { try Self.read(try ObjectReader(merged), into: &pool) }
        pool.updatedAt = env.now
        let who = try context.admin
        try await env.changes.write { [pool] conn in
            try conn.updatePool(pool)
            try env.audit(conn, who, tenant: tenantId, "pool.update", "pool", pool.id, Rep.diff(Rep.pool(current), Rep.pool(pool)))
        }
        return JSONResponse.make(Rep.pool(pool, resourceCount: count))
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let poolId = try context.parameters.require("pool_id")
        let who = try context.admin
        enum Outcome: Sendable {
            case missing
            case hasResources(Int)
            case usedBy([String])
            case deleted
        }
        let outcome = try await env.changes.write { conn -> Outcome in
            guard try conn.pool(tenantId: tenantId, id: poolId) != nil else { return .missing }
            let count = try conn.liveResourceCount(tenantId: tenantId, poolId: poolId)
            if count > 0 { return .hasResources(count) }
            let users = try conn.projectsUsing(tenantId: tenantId, poolId: poolId)
            if !users.isEmpty { return .usedBy(users) }
            try conn.deletePool(tenantId: tenantId, id: poolId)
            try env.audit(conn, who, tenant: tenantId, "pool.delete", "pool", poolId)
            return .deleted
        }
        switch outcome {
        case .missing: throw ProblemError.notFound("pool '\(poolId.prefix(64))'")
        case .hasResources(let n):
            throw ProblemError.conflict("the pool still holds \(n) resource(s); revoke them or move them to another pool first")
        case .usedBy(let names):
            throw ProblemError.conflict("projects still draw from this pool: \(names.prefix(5).joined(separator: ", ")); remove it from them first")
        case .deleted: return Response(status: .noContent)
        }
    }
}
