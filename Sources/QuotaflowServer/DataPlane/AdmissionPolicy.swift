import HashTreeCollections
import QuotaflowCore

/// Admission for one request: the model allow-list, per-request limits, rate limits, and the
/// budgets and a resource (the engine), with the project's overage policy when a budget does not
/// fit. Refusals are `Refusal`s in domain terms; the dialect shapes them.
struct AdmissionPolicy: Sendable {
    let engine: AdmissionEngine
    let approvals: Approvals
    let windowPolicy: WindowPolicy
    /// In a fleet, the shared counters that every admission must also fit.
    let fleet: FleetBudgets?

    func admit(_ x: Exchange, price: TokenPrice?, limits: RequestLimits, now: Int64) async throws {
        let caller = x.caller
        let parsed = x.parsed
        let enforce = caller.enforce
        var flags: [LedgerFlag] = []
        func fail(_ r: Refusal) throws {
            if enforce { throw r }
            flags.append(.wouldRefuse(r.reason))
        }
        let grants = caller.catalog.grants(for: caller.chain, now: now)
        // A call on a stored response names no model: the key that created it was allowed then.
        if !parsed.model.isEmpty, !caller.allows(model: parsed.model, grantedModels: grants.models) {
            try fail(Refusal(.modelNotAllowed, "model '\(parsed.model.prefix(100))' is not allowed for this key"))
        }
        let free = x.dialect.isFree
        guard var listPrice = free ? TokenPrice(inputPerMTok: 0, outputPerMTok: 0) : price else {
            throw Refusal(.modelNotAllowed, "no price is known for model '\(parsed.model.prefix(100))'; an admin must add it to the pricing table")
        }
        // OpenAI's priority tier costs twice the standard rate.
        if parsed.serviceTier == "priority" { listPrice = listPrice.scaled(by: 2) }
        var plan = x.plan
        try Self.check(plan, parsed: parsed, price: listPrice, limits: limits, fail: fail)
        let (checks, tokenCharges) = Self.rateChecks(x, plan: plan)
        if !checks.isEmpty {
            switch engine.rateLimit(checks, now: now, enforce: enforce) {
            case .failure(let denial): throw Refusal(denial)
            case .success(let auditFlags): flags += auditFlags
            }
            // A fleet counts every replica's requests; audit enforcement only records (locally).
            if enforce, let fleet { try await fleet.take(checks, now: now) }
        }
        x.rateLimited(charges: tokenCharges, flags: flags)
        var overage: (kind: OverageKind, projectId: String)?
        while true {
            let r = request(x, plan: plan, price: listPrice, overage: overage, grants: grants, now: now)
            switch try await fleetChecked(engine.admit(r), x: x, request: r) {
            case .admitted(let a):
                x.admitted(a, plan: plan, listPrice: listPrice, overage: overage)
                return
            case .denied(let denial):
                throw Refusal(denial)
            case .overBudget(let projectId, let detail, let periodEnd):
                guard overage == nil, let p = caller.catalog.projects[projectId] else { throw Refusal(.quotaExceeded, detail, resetsAt: periodEnd) }
                switch p.budget.overagePolicy {
                case .reject:
                    throw Refusal(.quotaExceeded, detail, resetsAt: periodEnd)
                case .approval:
                    let id = try await approvals.open(caller: caller, projectId: projectId, model: parsed.model, detail: detail)
                    throw Refusal(.approvalRequired, "\(detail). An approval request (\(id)) was opened; an admin can grant a temporary increase")
                case .fallbackModel:
                    guard let fb = p.budget.fallback, let fbPrice = caller.catalog.pricing[caller.tenant.id]?.price(for: fb.model) else {
                        throw Refusal(.quotaExceeded, detail, resetsAt: periodEnd)
                    }
                    plan = RequestPlan.make(
                        parsed, model: fb.model, outputLimit: [limits.maxOutputTokens, fb.maxOutputTokens].compactMap { $0 }.min(),
                        passthrough: caller.passthrough)
                    listPrice = fbPrice
                    try Self.check(plan, parsed: parsed, price: listPrice, limits: limits, fail: fail)
                    overage = (kind: .fallback, projectId: projectId)
                case .overflow:
                    guard caller.project.overflowAllowed else { throw Refusal(.quotaExceeded, detail, resetsAt: periodEnd) }
                    overage = (kind: .overflow, projectId: projectId)
                }
            }
        }
    }

    /// In a fleet, an admission must also fit the shared counters. A level they refuse becomes the
    /// refusal the engine would have given for it (a project's budget goes to its overage policy);
    /// when a resource's cap is what refuses, another resource is tried. If the database cannot be
    /// reached nothing is proven, so the request is refused (fail closed).
    func fleetChecked(_ outcome: AdmissionEngine.Outcome, x: Exchange, request r: AdmissionRequest) async throws -> AdmissionEngine.Outcome {
        guard let fleet, case .admitted(var a) = outcome else { return outcome }
        while true {
            do {
                try await fleet.hold(&a, x: x, request: r)
                return .admitted(a)
            } catch is FleetBudgets.SeatTaken {
                // Leased to another holder on another replica: another resource, if any (and the seat's
                // holder here is who it was).
                engine.release(resourceId: a.resource.id, estimatedTokens: r.shape.worstTokens, actualTokens: 0, now: r.now)
                engine.unlease(a, holder: r.holder, now: r.now)
                if engine.reselect(&a, request: r) { continue }
                engine.abandon(a, now: r.now, estimatedTokens: r.shape.worstTokens, releasingSlot: false)
                return .denied(
                    Denial(.noCapacity, "no resource in this project's pools can take a \(r.model) request right now", retryAfterSeconds: 1))
            } catch let refused as FleetBudgets.Refused {
                let key = refused.level.key
                var slotHeld = true
                if key.countsUpstreamCost {
                    engine.release(resourceId: a.resource.id, estimatedTokens: r.shape.worstTokens, actualTokens: 0, now: r.now)
                    if engine.reselect(&a, request: r) { continue }
                    slotHeld = false
                }
                engine.abandon(a, now: r.now, estimatedTokens: r.shape.worstTokens, releasingSlot: slotHeld)
                let periodEnd = engine.counterSnapshot(key)?.period.end ?? r.now
                let detail = AdmissionEngine.describeShared(key, catalog: r.catalog, periodEnd: periodEnd, worst: refused.level.amount)
                if case .project(let id) = key { return .overBudget(projectId: id, detail: detail, periodEnd: periodEnd) }
                if key.countsUpstreamCost { return .denied(Denial(.noCapacity, detail, retryAfterSeconds: 60)) }
                return .denied(Denial(.quotaExceeded, detail, resetsAt: periodEnd))
            } catch {
                engine.abandon(a, now: r.now, estimatedTokens: r.shape.worstTokens)
                throw Refusal(
                    .noCapacity, "the shared budget counters cannot be reached right now, so this request cannot be admitted", retryAfterSeconds: 1)
            }
        }
    }

    /// Rate limits per key, per project up the chain, per end user, and project tokens; with the
    /// token charges to give back when usage comes in lower than the worst case.
    static func rateChecks(_ x: Exchange, plan: RequestPlan) -> ([RateCheck], [(key: LimiterKey, limit: Int64, tokens: Int64)]) {
        let caller = x.caller
        let project = caller.project
        var checks: [RateCheck] = []
        if let rpm = caller.key.rpm ?? project.rateLimits.rpmPerKey {
            checks.append(.init(key: .key(caller.key.id), limit: rpm, cost: 1, what: "the request rate limit of this key (\(rpm)/min)"))
        }
        for p in caller.chain {
            if let rpm = p.rateLimits.rpm {
                checks.append(.init(key: .project(p.id), limit: rpm, cost: 1, what: "the request rate limit of project '\(p.name)' (\(rpm)/min)"))
            }
        }
        if let rpm = project.rateLimits.rpmPerUser, let user = x.userDigest {
            checks.append(
                .init(key: .user(projectId: project.id, user: user), limit: rpm, cost: 1, what: "the per-user request rate limit (\(rpm)/min)"))
        }
        let tokens = plan.shape.worstTokens
        var charges: [(key: LimiterKey, limit: Int64, tokens: Int64)] = []
        for p in caller.chain {
            if let tpm = p.rateLimits.tpm {
                checks.append(
                    .init(key: .projectTokens(p.id), limit: tpm, cost: tokens, what: "the token rate limit of project '\(p.name)' (\(tpm)/min)"))
                charges.append((.projectTokens(p.id), tpm, tokens))
            }
        }
        return (checks, charges)
    }

    /// Per-request limits on input size and worst-case cost.
    static func check(_ plan: RequestPlan, parsed: ParsedRequest, price: TokenPrice, limits: RequestLimits, fail: (Refusal) throws -> Void) throws {
        if let maxInput = limits.maxInputTokens, parsed.estimatedInput > maxInput {
            try fail(
                Refusal(.requestTooLarge, "the input is estimated at \(parsed.estimatedInput) tokens, over the limit of \(maxInput) per request"))
        }
        if let maxCost = limits.maxCostMicros {
            let worst = plan.shape.worstCost(at: price)
            if worst > maxCost {
                try fail(
                    Refusal(
                        .requestTooLarge,
                        "the worst-case cost of this request (\(Money.format(worst)) for \(parsed.estimatedInput) input tokens and "
                            + "\(plan.shape.explanation) of \(plan.model)) is over the per-request limit of \(Money.format(maxCost)); lower max_tokens"
                    ))
            }
        }
    }

    func request(
        _ x: Exchange, plan: RequestPlan, price: TokenPrice, overage: (kind: OverageKind, projectId: String)?, grants: Grants, now: Int64
    ) -> AdmissionRequest {
        let c = x.caller
        return AdmissionRequest(
            catalog: c.catalog, tenant: c.tenant, chain: c.chain, key: c.key, model: plan.model, family: x.dialect.family,
            pinnedResourceId: x.pinnedResourceId,
            holder: c.holder(userDigest: x.userDigest), shape: plan.shape, listPrice: price, enforce: c.enforce, overage: overage,
            grants: grants.budget, leaseIdleMs: c.tenant.settings.leaseIdleSeconds * 1000, session: x.parsed.session,
            passthrough: c.passthrough, windowPolicy: windowPolicy, betas: x.parsed.betas, now: now, leasesShared: fleet != nil)
    }

    /// The engine's view of the request as it stands (model, price and overage after admission).
    func request(for x: Exchange, now: Int64) -> AdmissionRequest {
        let s = x.snapshot
        return request(
            x, plan: s.plan, price: s.listPrice, overage: s.overage, grants: x.caller.catalog.grants(for: x.caller.chain, now: now), now: now)
    }

    /// Frees the failed resource and picks another; `false` when none is left. A passthrough request
    /// never moves: its token belongs to one provider, and another seat could be another provider's.
    func retry(_ x: Exchange, now: Int64) async -> Bool {
        guard var a = x.admission, !x.caller.passthrough else { return false }
        engine.release(resourceId: a.resource.id, estimatedTokens: x.plan.shape.worstTokens, actualTokens: 0, now: now)
        let r = request(for: x, now: now)
        while true {
            let before = Set(a.levels.map(\.key))
            let found = engine.reselect(&a, request: r)
            x.replace(a)
            guard found, let fleet else { return found }
            // The new resource's cap is held on the fleet's counters too, and an exclusive seat leased
            // (the old ones stay held until the row settles: fail closed).
            do {
                try await fleet.extend(&a, added: a.levels.filter { !before.contains($0.key) }, x: x, request: r)
                x.replace(a)
                return true
            } catch is FleetBudgets.Refused, is FleetBudgets.SeatTaken {
                engine.release(resourceId: a.resource.id, estimatedTokens: x.plan.shape.worstTokens, actualTokens: 0, now: now)
                continue
            } catch {
                engine.release(resourceId: a.resource.id, estimatedTokens: x.plan.shape.worstTokens, actualTokens: 0, now: now)
                return false
            }
        }
    }
}
