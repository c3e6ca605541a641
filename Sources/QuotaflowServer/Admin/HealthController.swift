import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `POST .../resources/{id}/verify` and `GET .../resources/{id}/health`.
struct HealthController {
    let kit: AdminKit
    let verifier: Verifier
    var state: AppState { kit.state }

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.post("tenants/{tenant_id}/resources/{resource_id}/verify", use: verify)
        admin.get("tenants/{tenant_id}/resources/{resource_id}/health", use: health)
    }

    @Sendable func verify(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let id = try context.parameters.require("resource_id")
        guard let r = try await state.db.read({ conn in try conn.resource(tenantId: tenantId, id: id) }) else {
            throw ProblemError.notFound("resource '\(id.prefix(64))'")
        }
        guard r.state != .revoked else { throw ProblemError.conflict("the resource is revoked") }
        do {
            return JSONResponse.make(try await verifier.probeNow(tenantId: tenantId, resourceId: id))
        } catch Verifier.ManualRefusal.unknownResource {
            throw ProblemError.notFound("resource '\(id.prefix(64))'")
        } catch Verifier.ManualRefusal.tooSoon {
            var p = ProblemError(.tooManyRequests, code: "rate_limited", "this resource was probed less than a second ago; try again shortly")
            p.headers[.retryAfter] = "1"
            throw p
        } catch Verifier.ManualRefusal.busy {
            throw ProblemError.conflict("a probe of this resource is already running")
        }
    }

    @Sendable func health(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(state)
        let id = try context.parameters.require("resource_id")
        let limit = Int(try request.query.int("limit", range: 1...200) ?? 20)
        let found = try await state.db.read { conn -> (Resource, ResourceHealth, [ProbeRecord])? in
            guard let r = try conn.resource(tenantId: tenantId, id: id) else { return nil }
            return (r, try conn.resourceHealth(id: id), try conn.probes(tenantId: tenantId, resourceId: id, limit: limit))
        }
        guard let (r, h, probes) = found else { throw ProblemError.notFound("resource '\(id.prefix(64))'") }
        let next: JSONValue
        switch r.state {
        case .revoked, .rejected: next = .null
        case _ where r.manualHold: next = .null
        case .cooling: next = Rep.time(r.coolingUntil)
        default: next = Rep.time(h.nextProbeAt ?? state.clock.nowMs())
        }
        return JSONResponse.make([
            "resource_id": .string(r.id), "state": .string(r.state.rawValue), "state_reason": .string(r.stateReason),
            "state_changed_at": Rep.time(r.stateChangedAt), "manual_hold": .bool(r.manualHold), "cooling_until": Rep.time(r.coolingUntil),
            "consecutive_ok": .int(Int64(h.consecutiveOK)), "consecutive_fail": .int(Int64(h.consecutiveFail)),
            "last_probe_at": Rep.time(h.lastProbeAt), "next_probe_at": next, "learned_limits": h.learned,
            "probes": .array(probes.map(Self.probe)),
        ])
    }

    static func probe(_ p: ProbeRecord) -> JSONValue {
        [
            "at": Rep.time(p.at), "ok": .bool(p.ok), "latency_ms": .int(p.latencyMs), "status": .int(p.status.map { Int64($0) }),
            "reason": .string(p.reason), "checks": p.checks, "headers": p.headers, "trigger": .string(p.trigger.rawValue),
        ]
    }
}

/// `GET .../ledger`: ledger rows with filters and cursor pagination, newest first.
struct LedgerController {
    let kit: AdminKit
    let ledger: LedgerWriter
    var state: AppState { kit.state }

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.get("tenants/{tenant_id}/ledger", use: list)
    }

    static func filter(_ q: Query) throws -> SQLiteConnection.LedgerFilter {
        var f = SQLiteConnection.LedgerFilter()
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
        let tenantId = try context.tenantScope(state)
        let q = request.query
        let filter = try Self.filter(q)
        let limit = try q.limit
        let before = try q.cursor()
        await ledger.flush()
        let rows = try await state.db.read { conn in try conn.ledger(tenantId: tenantId, filter: filter, before: before, limit: limit + 1) }
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
            "tokens_cache_write": .int(e.usage.cacheWrite), "tool_calls": .int(e.usage.serverToolCalls), "cost_micros": .int(e.costMicros), "upstream_cost_micros": .int(e.upstreamCostMicros),
            "overflow_charge_micros": .int(e.overflowChargeMicros), "reserved_micros": .int(e.reservedMicros), "status": .int(Int64(e.status)),
            "reason": .string(e.reason?.rawValue), "flags": .strings(e.flags.map(\.rawValue)), "overage": .string(e.overage?.rawValue), "overage_project_id": .string(e.overageProjectId),
            "latency_us": .int(e.latencyUs), "ttfb_us": .int(e.ttfbUs), "attempts": .int(Int64(e.attempts)),
        ]
    }
}
