import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `POST .../resources/{id}/verify` and `GET .../resources/{id}/health`.
struct ResourceHealthController {
    let env: AdminEnvironment
    let verifier: Verifier
    let engine: AdmissionEngine

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.post("tenants/{tenant_id}/resources/{resource_id}/verify", use: verify)
        admin.get("tenants/{tenant_id}/resources/{resource_id}/health", use: health)
    }

    @Sendable func verify(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let id = try context.parameters.require("resource_id")
        guard let r = try await env.reads.read({ conn in try conn.resource(tenantId: tenantId, id: id) }) else {
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
        let tenantId = try context.tenantScope(env.catalog)
        let id = try context.parameters.require("resource_id")
        let limit = Int(try request.query.int("limit", range: 1...200) ?? 20)
        let found = try await env.reads.read { conn -> (Resource, ResourceHealth, [ProbeRecord], [(holder: String, set: WindowSet)], OAuthRow?)? in
            guard let r = try conn.resource(tenantId: tenantId, id: id) else { return nil }
            return (
                r, try conn.resourceHealth(id: id), try conn.probes(tenantId: tenantId, resourceId: id, limit: limit),
                try conn.windows(resourceId: id),
                try conn.oauth(resourceId: id)
            )
        }
        guard let (r, h, probes, stored, oauth) = found else { throw ProblemError.notFound("resource '\(id.prefix(64))'") }
        // The engine's view is the newest (it takes every answer in; the database is written coalesced).
        let now = env.now
        let windows: [JSONValue] = stored.map { row in
            var v = WindowsController.latest(engine.windows(resourceId: id, holder: row.holder) ?? row.set, now: now).objectMembers ?? []
            v.insert(("holder", row.holder.isEmpty ? .null : .string(row.holder)), at: 0)
            return .object(v)
        }
        let next: JSONValue
        switch r.state {
        case .revoked, .rejected: next = .null
        case _ where r.manualHold: next = .null
        case .cooling: next = Rep.time(r.coolingUntil)
        default: next = Rep.time(h.nextProbeAt ?? env.now)
        }
        return JSONResponse.make([
            "resource_id": .string(r.id), "state": .string(r.state.rawValue), "state_reason": .string(r.stateReason),
            "state_changed_at": Rep.time(r.stateChangedAt), "manual_hold": .bool(r.manualHold), "cooling_until": Rep.time(r.coolingUntil),
            "consecutive_ok": .int(Int64(h.consecutiveOK)), "consecutive_fail": .int(Int64(h.consecutiveFail)),
            "in_flight": .int(engine.inFlight(resourceId: r.id)), "max_concurrency": r.limits.maxConcurrency.map(JSONValue.int) ?? .null,
            "last_probe_at": Rep.time(h.lastProbeAt), "next_probe_at": next, "learned_limits": h.learned,
            "probes": .array(probes.map(Self.probe)),
            "usage_windows": .array(windows),
            "oauth": oauth.map { o in
                .compact([
                    ("access_token_expires_at", Rep.time(o.accessExpiresAt)), ("refreshed_at", Rep.time(o.refreshedAt)),
                    ("refresh_count", .int(o.refreshCount)), ("failures", .int(o.failures)), ("next_attempt_at", Rep.time(o.nextAttemptAt)),
                    ("last_error", o.lastError.isEmpty ? .null : .string(o.lastError)), ("version", .int(o.version)),
                ])
            } ?? .null,
        ])
    }

    static func probe(_ p: ProbeRecord) -> JSONValue {
        [
            "at": Rep.time(p.at), "ok": .bool(p.ok), "latency_ms": .int(p.latencyMs), "status": .int(p.status.map { Int64($0) }),
            "reason": .string(p.reason), "checks": p.checks, "headers": p.headers, "trigger": .string(p.trigger.rawValue),
        ]
    }
}
