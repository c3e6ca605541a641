import QuotaflowCore
import Synchronization

/// All hot-path state, behind one lock: resource load and leases, cooldowns, budget counters and
/// rate limiters. Admission (check every level, hold, pick a resource) happens in one critical
/// section, so concurrent requests can never both take the last of a budget.
final class Engine: Sendable {
    struct WindowUse {
        var start: Int64
        var requests: Int64 = 0
        var tokens: Int64 = 0
    }

    struct ResourceRuntime {
        var inFlight: Int64 = 0
        var requests = SlidingCounter()
        var tokens = SlidingCounter()
        var windows: [WindowUse] = []
        var leaseHolder: String?
        var lastActive: Int64 = 0
        var leaseGrants: Int64 = 0
        var coolingUntil: Int64 = 0
        var routed: Int64 = 0
        /// Models this resource answered 404 for, cooled until the time given.
        var modelCooling: [String: Int64] = [:]

        mutating func load(now: Int64, limits: ResourceLimits) -> ResourceLoad {
            rollWindows(now: now, limits: limits)
            return ResourceLoad(
                inFlight: inFlight, requestsLastMinute: requests.total(nowMs: now), tokensLastMinute: tokens.total(nowMs: now),
                windowRequests: windows.map(\.requests), windowTokens: windows.map(\.tokens))
        }

        mutating func rollWindows(now: Int64, limits: ResourceLimits) {
            if windows.count != limits.windows.count { windows = limits.windows.map { _ in WindowUse(start: now) } }
            for (i, w) in limits.windows.enumerated() where now >= windows[i].start + w.windowSeconds * 1000 {
                windows[i] = WindowUse(start: now)
            }
        }
    }

    struct Counter {
        var anchor: PeriodAnchor
        var period: BillingPeriod
        var spent: Int64 = 0
        var reserved: Int64 = 0
        var carry: Int64 = 0
        var previousSpent: Int64 = 0
        var fired: Set<Int> = []
        var rolloverPercent: Int = 0
        var capForCarry: Int64?

        /// Moves to the period holding `now`, carrying unused budget when the budget rolls over.
        mutating func roll(now: Int64) {
            guard now >= period.end else { return }
            let next = BillingPeriod.containing(now, anchor: anchor)
            let adjacent = next.start == period.end
            previousSpent = adjacent ? spent : 0
            carry = capForCarry.map { BillingPeriod.carry(cap: $0, previousSpend: previousSpent, percent: rolloverPercent) } ?? 0
            period = next
            spent = 0
            fired = []
        }
    }

    struct State {
        var resources: [String: ResourceRuntime] = [:]
        var counters: [BudgetKey: Counter] = [:]
        var limiters: [LimiterKey: GCRA] = [:]
        var rotation: UInt64 = 0
        var reservationsHeld: Int64 = 0
    }

    let state = Mutex(State())

    // MARK: counters

    /// Where each counter's period comes from and what caps it.
    struct CounterSpec {
        var anchor: PeriodAnchor
        var cap: Int64?
        var rolloverPercent: Int = 0
    }

    static func spec(_ key: BudgetKey, catalog: Catalog, tenantId: String, projectId: String?, keyCap: Int64?, grants: Int64) -> CounterSpec {
        let tenantAnchor = catalog.tenants[tenantId]?.settings.period ?? .init()
        switch key {
        case .tenant:
            return CounterSpec(anchor: tenantAnchor, cap: catalog.tenants[tenantId]?.settings.monthlyLimitMicros)
        case .project(let id):
            let p = catalog.projects[id]
            return CounterSpec(
                anchor: p?.budget.period ?? tenantAnchor, cap: p?.budget.monthlyCapMicros.map { $0 + grants },
                rolloverPercent: p?.budget.rolloverPercent ?? 0)
        case .projectFallback(let id):
            let p = catalog.projects[id]
            return CounterSpec(anchor: p?.budget.period ?? tenantAnchor, cap: p?.budget.fallback?.capMicros)
        case .projectOverflow(let id):
            let p = catalog.projects[id]
            return CounterSpec(anchor: p?.budget.period ?? tenantAnchor, cap: p?.overflowCapMicros)
        case .key, .seat:
            let anchor = projectId.flatMap { catalog.projects[$0]?.budget.period } ?? tenantAnchor
            return CounterSpec(anchor: anchor, cap: keyCap)
        case .resource(let id):
            return CounterSpec(anchor: tenantAnchor, cap: catalog.resource(id, tenantId: tenantId)?.resource.limits.monthlySpendCapMicros)
        case .overflowCredit(let id):
            return CounterSpec(anchor: tenantAnchor, cap: catalog.resource(id, tenantId: tenantId)?.resource.creditCapMicros)
        }
    }

    static func counter(_ s: inout State, _ key: BudgetKey, spec: CounterSpec, now: Int64) -> Counter {
        if var c = s.counters[key] {
            if c.anchor != spec.anchor {
                // The period definition changed: start the new period with what is known; the runtime
                // recomputes it from the ledger right after.
                c.anchor = spec.anchor
                c.period = BillingPeriod.containing(now, anchor: spec.anchor)
            }
            c.rolloverPercent = spec.rolloverPercent
            c.capForCarry = spec.cap
            c.roll(now: now)
            s.counters[key] = c
            return c
        }
        let c = Counter(
            anchor: spec.anchor, period: BillingPeriod.containing(now, anchor: spec.anchor), rolloverPercent: spec.rolloverPercent,
            capForCarry: spec.cap)
        s.counters[key] = c
        return c
    }

    // MARK: admission

    final class Input: Sendable {
        let catalog: Catalog
        let tenant: Tenant
        /// Innermost first.
        let chain: [Project]
        let key: DataPlaneKey
        let model: String
        let wireFormat: WireFormat
        let holder: String
        /// What multiplies the request's cost; the worst case and the tokens held come from it.
        let shape: CostShape
        let listPrice: TokenPrice
        let enforce: Bool
        /// `fallback` or `overflow` with the project whose budget it stands in for.
        let overage: (kind: OverageKind, projectId: String)?
        let grants: [String: Int64]
        let leaseIdleMs: Int64
        let now: Int64

        init(
            catalog: Catalog, tenant: Tenant, chain: [Project], key: DataPlaneKey, model: String, wireFormat: WireFormat, holder: String,
            shape: CostShape, listPrice: TokenPrice, enforce: Bool, overage: (kind: OverageKind, projectId: String)?,
            grants: [String: Int64], leaseIdleMs: Int64, now: Int64
        ) {
            self.catalog = catalog
            self.tenant = tenant
            self.chain = chain
            self.key = key
            self.model = model
            self.wireFormat = wireFormat
            self.holder = holder
            self.shape = shape
            self.listPrice = listPrice
            self.enforce = enforce
            self.overage = overage
            self.grants = grants
            self.leaseIdleMs = leaseIdleMs
            self.now = now
        }
    }

    struct Admission: Sendable {
        var reservation: Reservation
        var resource: RoutableResource
        var facts: Charging.Facts
        var worstCase: Int64
        var upstreamWorstCase: Int64
        var flags: [LedgerFlag]
        var budgetRemaining: Int64?
        var tried: [String]
    }

    enum Outcome: Sendable {
        case admitted(Admission)
        case refused(Refusal)
        /// A project budget does not fit; its overage policy decides what happens next.
        case overBudget(projectId: String, detail: String, retryAt: Int64)
    }


    func admit(_ input: Input) -> Outcome {
        let worst = input.shape.worstCost(at: input.listPrice)
        let leaf = input.chain.first!
        var facts = Charging.Facts(
            tenantId: input.tenant.id, chain: input.chain.map(\.id), keyId: input.key.kind == .projectKey ? input.key.id : nil,
            seatId: input.key.kind == .seat ? input.key.id : nil, overage: input.overage?.kind, overageProjectId: input.overage?.projectId)
        return state.withLock { s -> Outcome in
            var flags: [LedgerFlag] = []
            // 1. Budgets at list cost, innermost first.
            var holds: [(BudgetKey, Int64)] = []
            var remaining: Int64?
            for key in Charging.budgetCounters(facts) {
                let spec = Self.spec(
                    key, catalog: input.catalog, tenantId: input.tenant.id, projectId: leaf.id, keyCap: input.key.budgetCapMicros,
                    grants: { if case .project(let id) = key { return input.grants[id] ?? 0 } else { return 0 } }())
                let c = Self.counter(&s, key, spec: spec, now: input.now)
                if let cap = spec.cap {
                    let limit = cap + c.carry
                    let left = limit - c.spent - c.reserved
                    if worst > left {
                        let detail = Self.describe(
                            key, catalog: input.catalog, used: c.spent + c.reserved, limit: limit, periodEnd: c.period.end, worst: worst,
                            shape: input.shape)
                        if input.enforce {
                            if case .project(let id) = key { return .overBudget(projectId: id, detail: detail, retryAt: c.period.end) }
                            return .refused(Refusal(.quotaExceeded, detail, resetsAt: c.period.end))
                        }
                        flags.append(.wouldRefuse(.quotaExceeded))
                    }
                    remaining = min(remaining ?? Int64.max, left - worst)
                }
                holds.append((key, worst))
            }
            // 2. A resource: owned capacity first, overflow only when nothing owned is eligible.
            var choice: (RoutableResource, Int64)?
            let ownedAllowed = input.overage?.kind != .overflow
            if ownedAllowed {
                choice = Self.select(&s, input: input, overflow: false, excluding: [])
            }
            if choice == nil, leaf.overflowAllowed, input.overage?.kind != .fallback {
                facts.overflow = true
                choice = Self.select(&s, input: input, overflow: true, excluding: [])
            }
            guard let (resource, upstreamWorst) = choice else {
                var refusal = Refusal(
                    .noCapacity,
                    "no resource in this project's pools can take a \(input.model) request right now"
                        + (leaf.overflowAllowed ? "" : " (overflow is not enabled for this project)"))
                refusal.retryAfterSeconds = Self.retryAfterSeconds(&s, input: input)
                return .refused(refusal)
            }
            facts.overflow = resource.resource.kind == .overflow
            facts.resourceId = resource.id
            for key in Charging.upstreamCounters(facts) {
                let spec = Self.spec(key, catalog: input.catalog, tenantId: input.tenant.id, projectId: leaf.id, keyCap: nil, grants: 0)
                _ = Self.counter(&s, key, spec: spec, now: input.now)
                holds.append((key, upstreamWorst))
            }
            for (key, amount) in holds { s.counters[key]?.reserved += amount }
            s.reservationsHeld += 1
            Self.take(&s, resource: resource, input: input)
            return .admitted(
                Admission(
                    reservation: Reservation(holds: holds), resource: resource, facts: facts, worstCase: worst, upstreamWorstCase: upstreamWorst,
                    flags: flags, budgetRemaining: remaining, tried: [resource.id]))
        }
    }

    /// Chooses the next resource after a retryable failure, keeping the budget holds.
    func reselect(_ admission: inout Admission, input: Input) -> Bool {
        state.withLock { s -> Bool in
            // Release the failed resource's upstream holds.
            let oldUpstream = Set(Charging.upstreamCounters(admission.facts).map(\.description))
            var kept: [(BudgetKey, Int64)] = []
            for (key, amount) in admission.reservation.holds {
                if oldUpstream.contains(key.description) {
                    s.counters[key]?.reserved -= amount
                } else {
                    kept.append((key, amount))
                }
            }
            var facts = admission.facts
            var choice: (RoutableResource, Int64)?
            if !facts.overflow && input.overage?.kind != .overflow {
                choice = Self.select(&s, input: input, overflow: false, excluding: Set(admission.tried))
            }
            if choice == nil, input.chain.first!.overflowAllowed, input.overage?.kind != .fallback {
                choice = Self.select(&s, input: input, overflow: true, excluding: Set(admission.tried))
            }
            guard let (resource, upstreamWorst) = choice else {
                admission.reservation = Reservation(holds: kept)
                facts.resourceId = nil
                admission.facts = facts
                return false
            }
            facts.overflow = resource.resource.kind == .overflow
            facts.resourceId = resource.id
            for key in Charging.upstreamCounters(facts) {
                let spec = Self.spec(key, catalog: input.catalog, tenantId: input.tenant.id, projectId: input.chain.first!.id, keyCap: nil, grants: 0)
                _ = Self.counter(&s, key, spec: spec, now: input.now)
                s.counters[key]?.reserved += upstreamWorst
                kept.append((key, upstreamWorst))
            }
            Self.take(&s, resource: resource, input: input)
            admission.reservation = Reservation(holds: kept)
            admission.facts = facts
            admission.resource = resource
            admission.upstreamWorstCase = upstreamWorst
            admission.tried.append(resource.id)
            return true
        }
    }

    static func take(_ s: inout State, resource: RoutableResource, input: Input) {
        var rt = s.resources[resource.id] ?? ResourceRuntime()
        rt.rollWindows(now: input.now, limits: resource.resource.limits)
        rt.inFlight += 1
        rt.routed += 1
        rt.requests.add(1, nowMs: input.now)
        rt.tokens.add(input.shape.worstTokens, nowMs: input.now)
        for i in rt.windows.indices {
            rt.windows[i].requests += 1
            rt.windows[i].tokens += input.shape.worstTokens
        }
        if resource.resource.leaseMode == .exclusive, rt.leaseHolder != input.holder {
            rt.leaseHolder = input.holder
            rt.leaseGrants += 1
        }
        rt.lastActive = input.now
        s.resources[resource.id] = rt
        s.rotation &+= 1
    }

    /// The eligible resource with the lowest load, and its marginal worst case.
    static func select(_ s: inout State, input: Input, overflow: Bool, excluding: Set<String>) -> (RoutableResource, Int64)? {
        let leaf = input.chain.first!
        let pools = leaf.poolIds
        var eligible: [(RoutableResource, Int64)] = []
        var candidates: [Routing.Candidate] = []
        let tokens = input.shape.worstTokens
        for r in input.catalog.resourcesByTenant[input.tenant.id] ?? [] {
            let res = r.resource
            guard (res.kind == .overflow) == overflow, pools.contains(res.poolId), !excluding.contains(r.id), res.tenantId == input.tenant.id,
                res.state.isRoutable, res.wireFormat == input.wireFormat, res.serves(model: input.model)
            else { continue }
            var rt = s.resources[r.id] ?? ResourceRuntime()
            if rt.coolingUntil > input.now { continue }
            if !rt.modelCooling.isEmpty, let until = rt.modelCooling[input.model], until > input.now { continue }
            let load = rt.load(now: input.now, limits: res.limits)
            s.resources[r.id] = rt
            guard Routing.hasRoom(load, limits: res.limits, tokens: tokens) else { continue }
            var held = false
            if res.leaseMode == .exclusive, let holder = rt.leaseHolder, holder != input.holder {
                let idle = rt.inFlight == 0 && input.now - rt.lastActive >= input.leaseIdleMs
                if !idle { continue }
            } else if res.leaseMode == .exclusive, rt.leaseHolder == input.holder {
                held = true
            }
            let upstreamWorst = res.costBasis.marginalCost(input.shape.worstUsage)
                ?? input.shape.worstCost(at: r.price ?? input.listPrice)
            // Caps on the resource itself (monthly spend, overflow credit).
            let capKey: BudgetKey = overflow ? .overflowCredit(r.id) : .resource(r.id)
            let capSpec = spec(capKey, catalog: input.catalog, tenantId: input.tenant.id, projectId: leaf.id, keyCap: nil, grants: 0)
            if let cap = capSpec.cap {
                let c = counter(&s, capKey, spec: capSpec, now: input.now)
                if c.spent + c.reserved + upstreamWorst > cap + c.carry { continue }
            }
            if overflow {
                var fits = true
                for p in input.chain {
                    let key = BudgetKey.projectOverflow(p.id)
                    let sp = spec(key, catalog: input.catalog, tenantId: input.tenant.id, projectId: p.id, keyCap: nil, grants: 0)
                    if let cap = sp.cap {
                        let c = counter(&s, key, spec: sp, now: input.now)
                        if c.spent + c.reserved + upstreamWorst > cap { fits = false }
                    }
                }
                if !fits { continue }
            }
            eligible.append((r, upstreamWorst))
            candidates.append(
                Routing.Candidate(
                    score: Routing.loadScore(load, limits: res.limits), degraded: res.state == .degraded, marginalRank: res.costBasis.marginalRank,
                    heldByHolder: held))
        }
        guard let index = Routing.choose(candidates, rotation: s.rotation) else { return nil }
        return eligible[index]
    }

    /// Seconds until some resource this request could use has room again, from time alone: a
    /// cooldown ends, a rate-limit slot or usage window frees, an idle lease returns, a spending cap's
    /// period ends. 1 when none is known (a request in flight may finish any moment).
    static func retryAfterSeconds(_ s: inout State, input: Input) -> Int64 {
        guard let at = earliestRoom(&s, input: input) else { return 1 }
        return max(1, (at - input.now + 999) / 1000)
    }

    func retryAfterSeconds(_ input: Input) -> Int64 { state.withLock { Self.retryAfterSeconds(&$0, input: input) } }

    static func earliestRoom(_ s: inout State, input: Input) -> Int64? {
        let leaf = input.chain.first!
        let tokens = input.shape.worstTokens
        let now = input.now
        var best: Int64?
        for r in input.catalog.resourcesByTenant[input.tenant.id] ?? [] {
            let res = r.resource
            guard leaf.poolIds.contains(res.poolId), res.kind != .overflow || leaf.overflowAllowed, res.wireFormat == input.wireFormat,
                res.serves(model: input.model), res.state.isRoutable || res.state == .cooling
            else { continue }
            var rt = s.resources[r.id] ?? ResourceRuntime()
            rt.rollWindows(now: now, limits: res.limits)
            var at = max(now, rt.coolingUntil, res.state == .cooling ? (res.coolingUntil ?? now) : now)
            if let until = rt.modelCooling[input.model] { at = max(at, until) }
            let limits = res.limits
            if let c = limits.maxConcurrency, rt.inFlight >= c { at = max(at, now + 1000) }
            if let rpm = limits.rpm { at = max(at, rt.requests.roomAt(1, limit: rpm, nowMs: now)) }
            if let tpm = limits.tpm, rt.tokens.total(nowMs: now) > 0 { at = max(at, rt.tokens.roomAt(min(tokens, tpm), limit: tpm, nowMs: now)) }
            for (i, w) in limits.windows.enumerated() where i < rt.windows.count {
                let full = (w.requests.map { rt.windows[i].requests >= $0 } ?? false)
                    || (w.tokens.map { rt.windows[i].tokens > 0 && rt.windows[i].tokens + tokens > $0 } ?? false)
                if full { at = max(at, rt.windows[i].start + w.windowSeconds * 1000) }
            }
            if res.leaseMode == .exclusive, let holder = rt.leaseHolder, holder != input.holder {
                at = max(at, rt.inFlight > 0 ? now + 1000 : rt.lastActive + input.leaseIdleMs)
            }
            let capKey: BudgetKey = res.kind == .overflow ? .overflowCredit(r.id) : .resource(r.id)
            if let c = s.counters[capKey], let cap = spec(capKey, catalog: input.catalog, tenantId: input.tenant.id, projectId: leaf.id, keyCap: nil, grants: 0).cap,
                c.spent + c.reserved >= cap + c.carry
            {
                at = max(at, c.period.end)
            }
            s.resources[r.id] = rt
            best = min(best ?? at, at)
        }
        return best
    }

    /// Why a request does not fit a budget. When money is left but not enough for this request's
    /// worst case, the message says so and how to lower it, instead of blaming the budget.
    static func describe(_ key: BudgetKey, catalog: Catalog, used: Int64, limit: Int64, periodEnd: Int64, worst: Int64, shape: CostShape) -> String {
        let name: String
        switch key {
        case .project(let id): name = "the budget of project '\(catalog.projects[id]?.name ?? id)'"
        case .tenant: name = "the tenant's monthly limit"
        case .key: name = "this key's budget"
        case .seat: name = "this seat's budget"
        case .projectFallback(let id): name = "the fallback budget of project '\(catalog.projects[id]?.name ?? id)'"
        default: name = "a spending cap"
        }
        let left = limit - used
        if left > 0 {
            return "this request's worst case (\(Money.format(worst)) at \(shape.explanation)) exceeds the \(Money.format(left)) left of "
                + "\(name) this period, which ends \(Timestamp.format(periodEnd)); set max_tokens lower"
        }
        return "\(name) is used up: \(Money.format(used)) of \(Money.format(limit)) this period, which ends \(Timestamp.format(periodEnd))"
    }

    // MARK: completion

    /// The request left the resource: frees its slot and corrects the token estimate.
    func release(resourceId: String, estimatedTokens: Int64, actualTokens: Int64?, now: Int64) {
        state.withLock { s in
            guard var rt = s.resources[resourceId] else { return }
            rt.inFlight = max(0, rt.inFlight - 1)
            if let actualTokens {
                let delta = actualTokens - estimatedTokens
                rt.tokens.add(delta, nowMs: now)
                for i in rt.windows.indices { rt.windows[i].tokens += delta }
            }
            rt.lastActive = now
            s.resources[resourceId] = rt
        }
    }

    /// Cools a resource in memory at once; returns whether this call extended the cooldown.
    func cool(resourceId: String, until: Int64) -> Bool {
        state.withLock { s in
            var rt = s.resources[resourceId] ?? ResourceRuntime()
            guard until > rt.coolingUntil else { return false }
            rt.coolingUntil = until
            s.resources[resourceId] = rt
            return true
        }
    }

    /// Takes one model off a resource until `until`; returns whether this call extended it.
    func coolModel(resourceId: String, model: String, until: Int64) -> Bool {
        state.withLock { s in
            var rt = s.resources[resourceId] ?? ResourceRuntime()
            guard until > rt.modelCooling[model] ?? 0 else { return false }
            rt.modelCooling = rt.modelCooling.filter { $0.value > until - Runtime.modelCooldownMs }
            rt.modelCooling[model] = until
            s.resources[resourceId] = rt
            return true
        }
    }

    /// A probe passed: the resource and the models its list claims are routable again.
    func clearCooling(resourceId: String) {
        state.withLock { s in
            s.resources[resourceId]?.coolingUntil = 0
            s.resources[resourceId]?.modelCooling = [:]
        }
    }

    /// Moves holds to spend for committed rows (called on the ledger thread after commit).
    func settle(_ items: [(Settlement, Int64)]) -> [(BudgetKey, Counter)] {
        state.withLock { s in
            var touched: [BudgetKey: Counter] = [:]
            for (settlement, at) in items {
                let reservation = settlement.reservation
                let charges = settlement.charges
                for (key, amount) in reservation.holds {
                    s.counters[key]?.reserved -= amount
                }
                if !reservation.holds.isEmpty { s.reservationsHeld -= 1 }
                for (key, amount) in charges {
                    guard var c = s.counters[key] else { continue }
                    c.roll(now: at)
                    if c.period.contains(at) {
                        c.spent += amount
                    } else if at < c.period.start {
                        c.previousSpent += amount
                    }
                    s.counters[key] = c
                    touched[key] = c
                }
            }
            return touched.map { ($0.key, $0.value) }
        }
    }

    /// Marks a threshold as fired; returns `false` if it already was this period.
    func markFired(_ key: BudgetKey, threshold: Int, periodStart: Int64) -> Bool {
        state.withLock { s in
            guard var c = s.counters[key], c.period.start == periodStart else { return false }
            let inserted = c.fired.insert(threshold).inserted
            s.counters[key] = c
            return inserted
        }
    }

    // MARK: rate limits

    enum RateOutcome {
        case allowed
        case refused(Refusal)
    }

    struct RateCheck {
        let key: LimiterKey
        let limit: Int64
        let cost: Int64
        let what: String
    }

    /// Takes one unit from every limiter or none. In audit mode takes them all and reports what would refuse.
    func rateLimit(_ checks: [RateCheck], now: Int64, enforce: Bool) -> (RateOutcome, [LedgerFlag]) {
        state.withLock { s in
            var taken: [RateCheck] = []
            for check in checks {
                var g = s.limiters[check.key] ?? GCRA()
                if check.cost > check.limit && enforce {
                    for t in taken { s.limiters[t.key]?.refund(limit: t.limit, periodMs: 60_000, cost: t.cost) }
                    return (.refused(Refusal(.requestTooLarge, "the request needs about \(check.cost) tokens, more than \(check.what) allows")), [])
                }
                if let wait = g.attempt(now: now, limit: check.limit, periodMs: 60_000, cost: check.cost) {
                    if enforce {
                        for t in taken { s.limiters[t.key]?.refund(limit: t.limit, periodMs: 60_000, cost: t.cost) }
                        let refusal = Refusal(.rateLimited, "\(check.what) is reached; retry after \(max(1, (wait + 999) / 1000)) s", retryAfterSeconds: (wait + 999) / 1000)
                        return (.refused(refusal), [])
                    }
                    g.force(now: now, limit: check.limit, periodMs: 60_000, cost: check.cost)
                    s.limiters[check.key] = g
                    taken.append(check)
                    return (.allowed, [.wouldRefuse(.rateLimited)])
                }
                s.limiters[check.key] = g
                taken.append(check)
            }
            return (.allowed, [])
        }
    }

    func refundTokens(key: LimiterKey, limit: Int64, tokens: Int64) {
        guard tokens > 0 else { return }
        state.withLock { s in s.limiters[key]?.refund(limit: limit, periodMs: 60_000, cost: tokens) }
    }

    func remaining(limiter key: LimiterKey, limit: Int64, now: Int64) -> Int64 {
        state.withLock { s in (s.limiters[key] ?? GCRA()).remaining(now: now, limit: limit, periodMs: 60_000) }
    }

    /// Drops limiter entries with no debt left.
    func pruneLimiters(now: Int64) {
        state.withLock { s in s.limiters = s.limiters.filter { !$0.value.isIdle(now: now) } }
    }

    // MARK: views

    func counterSnapshot(_ key: BudgetKey) -> Counter? { state.withLock { $0.counters[key] } }
    func allCounters() -> [BudgetKey: Counter] { state.withLock { $0.counters } }
    func resourceSnapshot() -> [String: ResourceRuntime] { state.withLock { $0.resources } }
    var reservationsHeld: Int64 { state.withLock { $0.reservationsHeld } }

    /// Replaces counters with values recomputed from the ledger (on the ledger thread).
    func replaceSpend(_ values: [BudgetKey: (spent: Int64, previous: Int64, period: BillingPeriod, anchor: PeriodAnchor, carry: Int64)]) {
        state.withLock { s in
            for (key, v) in values {
                var c = s.counters[key] ?? Counter(anchor: v.anchor, period: v.period)
                c.anchor = v.anchor
                c.period = v.period
                c.spent = v.spent
                c.previousSpent = v.previous
                c.carry = v.carry
                s.counters[key] = c
            }
        }
    }
}
