import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// The audit log, newest first, with cursor pagination.
struct AuditController {
    let env: AdminEnvironment

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.get("tenants/{tenant_id}/audit") { req, ctx in try await page(req, tenantId: try ctx.tenantScope(env.catalog)) }
        admin.get("audit") { req, ctx in
            try ctx.requireOperator()
            return try await page(req, tenantId: nil)
        }
    }

    func page(_ request: Request, tenantId: String?) async throws -> Response {
        let q = request.query
        let limit = try q.limit
        let before = try q.cursor()
        let targetId = try q.string("target_id", maxLength: 64)
        let action = try q.string("action", maxLength: 64)
        let rows = try await env.reads.read { conn in
            try conn.auditEntries(tenantId: tenantId, before: before, limit: limit + 1, targetId: targetId, action: action)
        }
        let page = Array(rows.prefix(limit))
        return JSONResponse.list(page.map(Rep.audit), nextCursor: rows.count > limit ? page.last.map { String($0.id) } : nil)
    }
}
