import AsyncHTTPClient
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import QuotaflowCore
import QuotaflowStore
import ServiceLifecycle
import Synchronization

/// Proves resources before they take traffic and keeps watching them.
final class Verifier: Sendable {
    let state: AppState
    let engine: Engine
    let wake = Wakeup()
    let client: HTTPClient
    let metrics: Metrics
    let lastManual = Mutex<[String: Int64]>([:])
    let busy = Mutex<Set<String>>([])

    init(state: AppState, engine: Engine, client: HTTPClient, metrics: Metrics) {
        self.state = state
        self.engine = engine
        self.client = client
        self.metrics = metrics
        let wake = self.wake
        state.onReload { _, _ in wake.poke() }
    }

    var config: AppConfig { state.config }

    // MARK: schedule

    struct Due {
        let resource: RoutableResource
        let trigger: String
    }

    /// When each resource is next due, from its state and its health document.
    func schedule(now: Int64) throws -> (due: [Due], next: Int64?) {
        let health = try state.db.readSync { try $0.allResourceHealth() }
        var due: [Due] = []
        var next: Int64?
        for r in state.catalog.resourcesByTenant.values.joined() {
            let res = r.resource
            if res.manualHold || res.state == .revoked || res.state == .rejected { continue }
            let h = health[r.id] ?? [:]
            let at: Int64
            let trigger: String
            switch res.state {
            case .pending:
                at = h["next_probe_at"]?.int64Value ?? now
                trigger = "admission"
            case .verifying:
                at = h["next_probe_at"]?.int64Value ?? now
                trigger = "admission"
            case .cooling:
                // One half-open probe exactly at the reset time the upstream gave.
                at = res.coolingUntil ?? now
                trigger = "half_open"
            default:
                at = h["next_probe_at"]?.int64Value ?? now
                trigger = "schedule"
            }
            if at <= now {
                due.append(Due(resource: r, trigger: trigger))
            } else {
                next = min(next ?? at, at)
            }
        }
        return (due, next)
    }

    /// The worker loop: probe what is due, then sleep until the next due time or a change.
    func run() async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let now = state.clock.nowMs()
            var nextDue: Int64?
            do {
                let (due, next) = try schedule(now: now)
                nextDue = next
                await withTaskGroup(of: Void.self) { group in
                    var running = 0
                    for d in due {
                        if running >= 4 {
                            await group.next()
                            running -= 1
                        }
                        group.addTask { _ = try? await self.probeAndApply(d.resource, trigger: d.trigger) }
                        running += 1
                    }
                }
                if !due.isEmpty { continue }
            } catch {
                state.logger.error("verifier schedule failed", metadata: ["error": "\(error)"])
            }
            let deadline = min(nextDue ?? now + config.probeIntervalMs, now + config.probeIntervalMs)
            await wake.wait(untilMs: deadline, clock: state.clock)
        }
    }

    // MARK: manual

    /// `POST .../verify`: probe now (at most once a second per resource) and return the result.
    func probeNow(tenantId: String, resourceId: String) async throws -> JSONValue {
        guard let r = state.catalog.resource(resourceId, tenantId: tenantId) else {
            throw ProblemError.notFound("resource '\(resourceId.prefix(64))'")
        }
        let now = state.clock.nowMs()
        let allowed = lastManual.withLock { m -> Bool in
            if let last = m[resourceId], now - last < 1000 { return false }
            m[resourceId] = now
            return true
        }
        guard allowed else {
            var p = ProblemError(.tooManyRequests, code: "rate_limited", "this resource was probed less than a second ago; try again shortly")
            p.headers[.retryAfter] = "1"
            throw p
        }
        return try await probeAndApply(r, trigger: "manual")
    }

    // MARK: probe

    struct ProbeRun {
        var outcome: ProbeOutcome
        var checks: [JSONValue] = []
    }

    func probeAndApply(_ r: RoutableResource, trigger: String) async throws -> JSONValue {
        let claimed = busy.withLock { $0.insert(r.id).inserted }
        guard claimed else { throw ProblemError.conflict("a probe of this resource is already running") }
        defer { _ = busy.withLock { $0.remove(r.id) } }
        let run = await probe(r)
        metrics.probe(run.outcome.ok ? "pass" : "fail")
        return try await apply(r, run, trigger: trigger)
    }

    func authHeaders(_ r: RoutableResource) -> HTTPHeaders {
        var h = HTTPHeaders()
        h.add(name: "user-agent", value: "quotaflow-verifier")
        if r.resource.wireFormat == .anthropic {
            h.add(name: "x-api-key", value: r.credential)
            h.add(name: "anthropic-version", value: "2023-06-01")
        } else {
            h.add(name: "authorization", value: "Bearer \(r.credential)")
        }
        return h
    }

    func send(_ url: String, method: HTTPMethod, headers: HTTPHeaders, body: JSONValue?) async throws -> (HTTPClientResponse, ByteBuffer) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers = headers
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: JSONWriter.bytes(body)))
        }
        let deadline = NIODeadline.now() + .milliseconds(config.probeTimeoutMs)
        let response = try await client.execute(request, deadline: deadline)
        let buffer = try await response.body.collect(upTo: 4 << 20)
        return (response, buffer)
    }

    func failureReason(status: UInt, body: ByteBuffer) -> String {
        switch status {
        case 401: return "401 from upstream: the key was refused"
        case 403: return "403 from upstream: the key lacks permission"
        case 404: return "404 from upstream: the base URL does not point at the provider's API"
        case 429: return "429 from upstream: rate limited"
        default: return "\(status) from upstream"
        }
    }

    /// One probe: reachability and latency, credential, claimed models, rate-limit headers; a
    /// 1-token completion only when the resource's settings ask for it.
    func probe(_ r: RoutableResource) async -> ProbeRun {
        let res = r.resource
        let started = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Int64 { Int64((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000) }
        var run = ProbeRun(outcome: ProbeOutcome(ok: false, reason: ""))
        func check(_ name: String, _ ok: Bool, _ detail: String) { run.checks.append(["check": .string(name), "ok": .bool(ok), "detail": .string(detail)]) }
        if res.kind != .overflow && res.attestation == nil {
            check("attestation", false, "missing")
            run.outcome = ProbeOutcome(ok: false, reason: "no owner attestation: record who confirmed permission to connect this resource")
            return run
        }
        let modelsURL = res.wireFormat == .anthropic ? r.baseURL + "/v1/models" : r.baseURL + "/models"
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            (response, body) = try await send(modelsURL, method: .GET, headers: authHeaders(r), body: nil)
        } catch {
            let text = "\(error)".lowercased()
            let timedOut = text.contains("deadline") || text.contains("timeout")
            let reason = timedOut ? "no answer within \(Self.seconds(config.probeTimeoutMs))" : "the upstream could not be reached"
            check("reachable", false, reason)
            run.outcome = ProbeOutcome(ok: false, reason: reason, latencyMs: elapsed())
            return run
        }
        let latency = elapsed()
        let headers = response.headers.map { ($0.name, $0.value) }
        let limits = RateLimitInfo.parse(headers, nowMs: state.clock.nowMs())
        check("reachable", true, "answered in \(latency) ms")
        let status = response.status.code
        run.outcome = ProbeOutcome(ok: false, reason: "", status: Int(status), latencyMs: latency, rateLimits: limits)
        if !limits.evidence.isEmpty {
            check("rate_limits", true, limits.evidence.map { "\($0.0)=\($0.1)" }.joined(separator: "; "))
        }
        switch status {
        case 200..<300:
            check("credential", true, "accepted")
            let listed = Self.modelIds(body)
            if let missing = Self.unlistedModels(claimed: res.models, listed: listed) {
                check("models", false, missing)
                run.outcome.reason = missing
                return run
            }
            check("models", true, "the models list includes the claimed models")
        case 404 where res.wireFormat == .anthropic:
            // No models list: the free token-count call checks the key instead.
            let model = res.models.first { !$0.contains("*") } ?? "claude-sonnet-4-5"
            do {
                let (r2, b2) = try await send(
                    r.baseURL + "/v1/messages/count_tokens", method: .POST, headers: authHeaders(r),
                    body: ["model": .string(model), "messages": [["role": "user", "content": "ping"]]])
                guard (200..<300).contains(r2.status.code) else {
                    let reason = failureReason(status: r2.status.code, body: b2)
                    check("credential", false, reason)
                    run.outcome.reason = reason
                    return run
                }
                check("credential", true, "accepted by the token-count call")
                check("models", true, "no models list upstream; not checked")
            } catch {
                check("credential", false, "token-count call failed")
                run.outcome.reason = "the token-count call failed"
                return run
            }
        case 404:
            check("models", true, "no models list upstream; not checked")
            if !res.probe.completion { check("credential", true, "not checked without a completion probe") }
        default:
            let reason = failureReason(status: status, body: body)
            check("credential", status != 401 && status != 403, reason)
            run.outcome.reason = reason
            return run
        }
        if res.probe.completion {
            guard let model = res.probe.model ?? res.models.first(where: { !$0.contains("*") }) else {
                check("completion", false, "no exact model name to probe")
                run.outcome.reason = "the completion probe needs an exact model name"
                return run
            }
            let (url, body): (String, JSONValue) =
                res.wireFormat == .anthropic
                ? (r.baseURL + "/v1/messages", ["model": .string(model), "max_tokens": 1, "messages": [["role": "user", "content": "ping"]]])
                : (r.baseURL + "/chat/completions", ["model": .string(model), "max_tokens": 1, "messages": [["role": "user", "content": "ping"]]])
            do {
                let (r3, b3) = try await send(url, method: .POST, headers: authHeaders(r), body: body)
                guard (200..<300).contains(r3.status.code) else {
                    let reason = "completion probe: " + failureReason(status: r3.status.code, body: b3)
                    check("completion", false, reason)
                    run.outcome.reason = reason
                    return run
                }
                check("completion", true, "1-token completion with \(model) succeeded")
            } catch {
                check("completion", false, "no answer")
                run.outcome.reason = "completion probe: no answer within \(Self.seconds(config.probeTimeoutMs))"
                return run
            }
        }
        run.outcome.ok = true
        run.outcome.reason = "passed"
        return run
    }

    static func seconds(_ ms: Int64) -> String { ms % 1000 == 0 ? "\(ms / 1000) s" : "\(ms) ms" }

    static func modelIds(_ body: ByteBuffer) -> [String]? {
        guard let value = try? JSONParser.parse(Array(body.readableBytesView)), let data = value["data"]?.arrayValue else { return nil }
        return data.compactMap { $0["id"]?.stringValue }
    }

    /// `nil` when the claimed models are listed; otherwise the reason.
    static func unlistedModels(claimed: [String], listed: [String]?) -> String? {
        guard let listed else { return nil }
        let exact = claimed.filter { !$0.contains("*") }
        let missing = exact.filter { !listed.contains($0) }
        let anyMatch = claimed.contains { pattern in listed.contains { ModelPattern.matches(pattern: pattern, $0) } }
        if !anyMatch { return "the models list does not include any model this resource claims to serve" }
        if !missing.isEmpty { return "the models list does not include claimed model(s): \(missing.prefix(5).joined(separator: ", "))" }
        return nil
    }

    // MARK: apply

    func apply(_ r: RoutableResource, _ run: ProbeRun, trigger: String) async throws -> JSONValue {
        let now = state.clock.nowMs()
        let config = self.config
        let outcome = run.outcome
        let evidence: JSONValue = .object((outcome.rateLimits?.evidence ?? []).map { ($0.0, .string($0.1)) })
        let record = ProbeRecord(
            tenantId: r.resource.tenantId, resourceId: r.id, at: now, ok: outcome.ok, latencyMs: outcome.latencyMs, status: outcome.status,
            reason: outcome.reason, checks: .array(run.checks), headers: evidence, trigger: trigger)
        let tenantId = r.resource.tenantId
        let id = r.id
        let jitterSeed = UInt64(truncatingIfNeeded: now) &+ UInt64(abs(id.hashValue))
        let result = try await state.mutate { conn -> (ResourceState, String?) in
            guard var res = try conn.resource(tenantId: tenantId, id: id) else { return (.revoked, nil) }
            try conn.insertProbe(record, keep: config.probeHistory)
            let health = try conn.resourceHealth(id: id)
            var counters = HealthCounters(
                consecutiveOK: Int(health["consecutive_ok"]?.int64Value ?? 0), consecutiveFail: Int(health["consecutive_fail"]?.int64Value ?? 0))
            if trigger == "manual" && res.state == .rejected && outcome.ok { counters = HealthCounters() }
            if res.state == .pending { counters = HealthCounters() }
            let decision = HealthMachine.next(
                state: res.state, manualHold: res.manualHold, counters: counters, outcome: outcome, admissionProbes: config.admissionProbes,
                suspendAfter: config.suspendAfterFailures)
            // Schedule the next probe.
            var nextAt: Int64?
            var coolingUntil = res.coolingUntil
            switch decision.state {
            case .verifying: nextAt = now + config.admissionSpacingMs
            case .active, .degraded, .suspended:
                let jitter = Int64(jitterSeed % UInt64(max(1, config.probeIntervalMs / 5))) - config.probeIntervalMs / 10
                nextAt = now + config.probeIntervalMs + jitter
                coolingUntil = nil
            case .cooling:
                coolingUntil = max(res.coolingUntil ?? now, now + config.defaultCooldownMs)
                nextAt = coolingUntil
            default: nextAt = nil
            }
            var learned = health["learned"] ?? [:]
            if let l = outcome.rateLimits, l.limitRequests != nil || l.limitTokens != nil || l.resetAt != nil {
                learned = .compact([
                    ("limit_requests", l.limitRequests.map(JSONValue.int)), ("limit_tokens", l.limitTokens.map(JSONValue.int)),
                    ("remaining_requests", l.remainingRequests.map(JSONValue.int)), ("remaining_tokens", l.remainingTokens.map(JSONValue.int)),
                    ("reset_at", l.resetAt.map { .string(Timestamp.format($0)) }), ("seen_at", .string(Timestamp.format(now))),
                ])
            }
            try conn.setResourceHealth(
                id: id,
                .compact([
                    ("consecutive_ok", .int(Int64(decision.counters.consecutiveOK))), ("consecutive_fail", .int(Int64(decision.counters.consecutiveFail))),
                    ("last_probe_at", .int(now)), ("next_probe_at", nextAt.map(JSONValue.int)), ("learned", learned),
                ]))
            if decision.state != res.state || coolingUntil != res.coolingUntil {
                let before = res.state
                res.state = decision.state
                res.coolingUntil = decision.state == .cooling ? coolingUntil : nil
                if let cause = decision.cause { res.stateReason = cause }
                if before != res.state { res.stateChangedAt = now }
                res.updatedAt = now
                try conn.updateResource(res)
                if before != res.state {
                    try conn.appendAudit(
                        AuditEntry(
                            tenantId: tenantId, at: now, actor: "system:verifier", action: "resource.state", targetType: "resource", targetId: id,
                            summary: [
                                "from": .string(before.rawValue), "to": .string(res.state.rawValue), "cause": .string(decision.cause ?? ""),
                                "probe": ["ok": .bool(outcome.ok), "reason": .string(outcome.reason), "status": .int(outcome.status.map { Int64($0) }),
                                    "latency_ms": .int(outcome.latencyMs), "trigger": .string(trigger), "headers": evidence],
                            ]))
                }
            }
            return (res.state, decision.cause)
        }
        if result.0 != .cooling { engine.clearCooling(resourceId: id) }
        return [
            "resource_id": .string(id), "ok": .bool(outcome.ok), "reason": .string(outcome.reason), "status": .int(outcome.status.map { Int64($0) }),
            "latency_ms": .int(outcome.latencyMs), "checks": .array(run.checks), "state": .string(result.0.rawValue), "trigger": .string(trigger),
            "at": .string(Timestamp.format(now)),
        ]
    }
}

/// Runs the verifier inside `quotaflow serve`; stops on graceful shutdown.
struct VerifierService: Service {
    let verifier: Verifier
    let enabled: Bool

    func run() async throws {
        guard enabled else {
            try? await gracefulShutdown()
            return
        }
        await withGracefulShutdownHandler {
            await verifier.run()
        } onGracefulShutdown: {
            verifier.wake.poke()
        }
    }
}
