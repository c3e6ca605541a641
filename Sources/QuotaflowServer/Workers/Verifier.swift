import Foundation
import HashTreeCollections
import Logging
import QuotaflowCore
import QuotaflowStore
import ServiceLifecycle
import Synchronization

/// Proves resources before they take traffic and keeps watching them: the schedule, manual and
/// refusal-triggered probes, and applying each probe's outcome through `HealthMachine`.
final class Verifier: Sendable {
    let state: AppState
    let engine: AdmissionEngine
    let writer: StateWriter
    let wake = Wakeup()
    let prober: Prober
    let metrics: Metrics
    let lastManual = Mutex<[String: Int64]>([:])
    /// Probes running now, by resource, so a refusal-triggered re-probe joins one in flight.
    let running = Mutex<[String: Task<ProbeOutcome?, Never>]>([:])
    /// The last refusal-triggered outcome per resource: one re-probe per `recheckSpacingMs` at most,
    /// so a client cannot make Quotaflow hammer a provider by sending refused requests.
    let lastRecheck = Mutex<[String: (at: Int64, outcome: ProbeOutcome)]>([:])
    static let recheckSpacingMs: Int64 = 10_000

    init(state: AppState, engine: AdmissionEngine, writer: StateWriter, clients: UpstreamClients, metrics: Metrics, oauth: OAuthCredentials) {
        self.state = state
        self.engine = engine
        self.writer = writer
        self.prober = Prober(clients: clients, config: state.config, clock: state.clock, oauth: oauth)
        self.metrics = metrics
        let wake = self.wake
        // Only a change to resources can change the schedule; other admin writes leave it be.
        state.onPublish { _, _, changes in if !changes.resources.isEmpty || !changes.tenants.isEmpty { wake.poke() } }
    }

    var config: AppConfig { state.config }

    // MARK: schedule

    struct Due {
        let resource: RoutableResource
        let trigger: ProbeTrigger
    }

    /// When each resource is next due, from its state and its health document.
    func schedule(now: Int64) throws -> (due: [Due], next: Int64?) {
        let health = try state.db.readSync { try $0.allResourceHealth() }
        var due: [Due] = []
        var next: Int64?
        for r in state.catalog.resourcesByTenant.values.joined() {
            let res = r.resource
            if res.manualHold || res.state == .revoked || res.state == .rejected { continue }
            let h = health[r.id] ?? ResourceHealth()
            let at: Int64
            let trigger: ProbeTrigger
            switch res.state {
            case .pending, .verifying:
                at = h.nextProbeAt ?? now
                trigger = .admission
            case .cooling:
                // One half-open probe exactly at the reset time the upstream gave.
                at = res.coolingUntil ?? now
                trigger = .halfOpen
            default:
                at = h.nextProbeAt ?? now
                trigger = .schedule
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
            // Once per fleet: only the leader probes on schedule (a replica that stops leading stops here).
            if !state.leads {
                await state.untilLeading()
                continue
            }
            let now = state.clock.nowMs()
            var nextDue: Int64?
            do {
                let (due, next) = try schedule(now: now)
                nextDue = next
                await withTaskGroup(of: Void.self) { group in
                    var active = 0
                    for d in due where state.leads {
                        if active >= 4 {
                            await group.next()
                            active -= 1
                        }
                        group.addTask { _ = await self.probeOnce(d.resource, trigger: d.trigger) }
                        active += 1
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

    // MARK: probing

    /// Probes `r` and applies the outcome, unless a probe of it is already running, whose outcome
    /// this then shares. `nil` when the probe could not be recorded.
    func probeOnce(_ r: RoutableResource, trigger: ProbeTrigger) async -> ProbeOutcome? {
        let (task, owner) = running.withLock { map -> (Task<ProbeOutcome?, Never>, Bool) in
            if let t = map[r.id] { return (t, false) }
            let t = Task { () -> ProbeOutcome? in
                let run = await self.prober.probe(r, families: trigger != .schedule && trigger != .halfOpen)
                self.metrics.probe(passed: run.outcome.ok)
                do {
                    _ = try await self.apply(r, run, trigger: trigger)
                    return run.outcome
                } catch {
                    self.state.logger.error("could not record a probe", metadata: ["resource": "\(r.id)", "error": "\(error)"])
                    return nil
                }
            }
            map[r.id] = t
            return (t, true)
        }
        let outcome = await task.value
        if owner { _ = running.withLock { $0.removeValue(forKey: r.id) } }
        return outcome
    }

    /// Re-probes a resource at once after the provider refused a request with its credential or
    /// route. Only a failed probe changes its state; a passing one means the refusal was specific to
    /// the request. Spaced by `recheckSpacingMs` per resource (the last outcome is reused meanwhile).
    func recheck(_ r: RoutableResource) async -> ProbeOutcome? {
        let now = state.clock.nowMs()
        if let last = lastRecheck.withLock({ $0[r.id] }), now - last.at < Self.recheckSpacingMs { return last.outcome }
        guard let outcome = await probeOnce(r, trigger: .refusal) else { return nil }
        lastRecheck.withLock { $0[r.id] = (state.clock.nowMs(), outcome) }
        return outcome
    }

    /// Why a manual probe was not run.
    enum ManualRefusal: Error, Equatable {
        case unknownResource
        /// Probed less than a second ago.
        case tooSoon
        /// A probe of it is running now.
        case busy
    }

    /// `POST .../verify`: probe now (at most once a second per resource) and return the result.
    func probeNow(tenantId: String, resourceId: String) async throws -> JSONValue {
        guard let r = state.catalog.resource(resourceId, tenantId: tenantId) else { throw ManualRefusal.unknownResource }
        let now = state.clock.nowMs()
        let allowed = lastManual.withLock { m -> Bool in
            if let last = m[resourceId], now - last < 1000 { return false }
            m[resourceId] = now
            return true
        }
        guard allowed else { throw ManualRefusal.tooSoon }
        guard running.withLock({ $0[r.id] == nil }) else { throw ManualRefusal.busy }
        let run = await prober.probe(r)
        metrics.probe(passed: run.outcome.ok)
        return try await apply(r, run, trigger: .manual)
    }

    // MARK: apply

    /// Records the probe, moves the resource through the health state machine (audited with the
    /// evidence), and schedules its next probe.
    func apply(_ r: RoutableResource, _ run: Prober.Run, trigger: ProbeTrigger) async throws -> JSONValue {
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
        let result = try await writer.perform("probe of \(id)", republish: true) { conn -> (ResourceState, String?) in
            guard var res = try conn.resource(tenantId: tenantId, id: id) else { return (.revoked, nil) }
            try conn.insertProbe(record, keep: config.probeHistory)
            let health = try conn.resourceHealth(id: id)
            var counters = health.counters
            if trigger == .manual && res.state == .rejected && outcome.ok { counters = HealthCounters() }
            if res.state == .pending && outcome.rateLimitedUntil == nil { counters = HealthCounters() }
            let decision = HealthMachine.next(
                state: res.state, manualHold: res.manualHold, counters: counters, outcome: outcome, admissionProbes: config.admissionProbes,
                suspendAfter: config.suspendAfterFailures)
            // Schedule the next probe.
            var nextAt: Int64?
            var coolingUntil = res.coolingUntil
            switch decision.state {
            case .pending, .verifying:
                nextAt = outcome.rateLimitedUntil ?? now + config.admissionSpacingMs
            case .active, .degraded, .suspended:
                let jitter = Int64(jitterSeed % UInt64(max(1, config.probeIntervalMs / 5))) - config.probeIntervalMs / 10
                nextAt = now + config.probeIntervalMs + jitter
                coolingUntil = nil
            case .cooling:
                coolingUntil = outcome.rateLimitedUntil ?? max(res.coolingUntil ?? now, now + config.defaultCooldownMs)
                nextAt = coolingUntil
            default: nextAt = nil
            }
            var learned = health.learned
            if let l = outcome.rateLimits, l.limitRequests != nil || l.limitTokens != nil || l.resetAt != nil {
                learned = .compact([
                    ("limit_requests", l.limitRequests.map(JSONValue.int)), ("limit_tokens", l.limitTokens.map(JSONValue.int)),
                    ("remaining_requests", l.remainingRequests.map(JSONValue.int)), ("remaining_tokens", l.remainingTokens.map(JSONValue.int)),
                    ("reset_at", l.resetAt.map { .string(Timestamp.format($0)) }), ("seen_at", .string(Timestamp.format(now))),
                ])
            }
            try conn.setResourceHealth(
                id: id,
                ResourceHealth(
                    consecutiveOK: decision.counters.consecutiveOK, consecutiveFail: decision.counters.consecutiveFail, lastProbeAt: now,
                    nextProbeAt: nextAt, learned: learned))
            if decision.state != res.state || coolingUntil != res.coolingUntil || decision.cause != nil {
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
                                "probe": [
                                    "ok": .bool(outcome.ok), "reason": .string(outcome.reason), "status": .int(outcome.status.map { Int64($0) }),
                                    "latency_ms": .int(outcome.latencyMs), "trigger": .string(trigger.rawValue), "headers": evidence,
                                ],
                            ]))
                }
            }
            return (res.state, decision.cause)
        }
        if result.0 != .cooling { engine.clearCooling(resourceId: id) }
        return [
            "resource_id": .string(id), "ok": .bool(outcome.ok), "reason": .string(outcome.reason), "status": .int(outcome.status.map { Int64($0) }),
            "latency_ms": .int(outcome.latencyMs), "checks": .array(run.checks), "state": .string(result.0.rawValue),
            "trigger": .string(trigger.rawValue), "at": .string(Timestamp.format(now)),
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
