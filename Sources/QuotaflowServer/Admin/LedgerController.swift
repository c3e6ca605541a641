import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `GET .../ledger`: ledger rows with filters and cursor pagination, newest first.
struct LedgerController {
    let env: AdminEnvironment
    let ledger: LedgerWriter

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.get("tenants/{tenant_id}/ledger", use: list)
    }

    static func filter(_ q: Query) throws -> StoreConnection.LedgerFilter {
        var f = StoreConnection.LedgerFilter()
        f.projectId = try q.string("project_id", maxLength: 64)
        f.keyId = try q.string("key_id", maxLength: 64)
        f.seatId = try q.string("seat_id", maxLength: 64)
        f.resourceId = try q.string("resource_id", maxLength: 64)
        f.model = try q.string("model", maxLength: 200)
        f.status = try q.int("status", range: 100...599).map { Int($0) }
        f.reason = try q.string("reason", maxLength: 64)
        f.from = try q.time("from")
        f.to = try q.time("to")
        return f
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let q = request.query
        let filter = try Self.filter(q)
        let limit = try q.limit
        let before = try q.cursor()
        await ledger.flush()
        let rows = try await env.reads.read { conn in try conn.ledger(tenantId: tenantId, filter: filter, before: before, limit: limit + 1) }
        let page = Array(rows.prefix(limit))
        return JSONResponse.list(page.map(Self.entry), nextCursor: rows.count > limit ? page.last.map { String($0.seq) } : nil)
    }

    static func entry(_ e: LedgerEntry) -> JSONValue {
        [
            "seq": .int(e.seq), "request_id": .string(e.requestId), "at": Rep.time(e.at), "started_at": Rep.time(e.startedAt),
            "tenant_id": .string(e.tenantId), "project_id": .string(e.projectId), "key_id": .string(e.keyId), "seat_id": .string(e.seatId),
            "user_digest": .string(e.userDigest), "resource_id": .string(e.resourceId), "pool_id": .string(e.poolId), "overflow": .bool(e.overflow),
            "provider": .string(e.provider), "wire_format": .string(e.wireFormat.rawValue), "endpoint": .string(e.endpoint),
            "model_requested": .string(e.modelRequested), "model_served": .string(e.modelServed), "stream": .bool(e.stream),
            "tokens_in": .int(e.usage.input), "tokens_out": .int(e.usage.output), "tokens_cached": .int(e.usage.cachedInput),
            "tokens_cache_write": .int(e.usage.cacheWrite), "tokens_cache_write_1h": .int(e.usage.cacheWrite1h),
            "tokens_reasoning": .int(e.usage.reasoning), "tool_calls": .int(e.usage.serverToolCalls), "cost_micros": .int(e.costMicros),
            "upstream_cost_micros": .int(e.upstreamCostMicros),
            "overflow_charge_micros": .int(e.overflowChargeMicros), "reserved_micros": .int(e.reservedMicros), "status": .int(Int64(e.status)),
            "reason": .string(e.reason?.rawValue), "flags": .strings(e.flags.map(\.rawValue)), "overage": .string(e.overage?.rawValue),
            "overage_project_id": .string(e.overageProjectId),
            "latency_us": .int(e.latencyUs), "ttfb_us": .int(e.ttfbUs), "attempts": .int(Int64(e.attempts)),
            "response_id": .string(e.responseId),
        ]
    }
}
