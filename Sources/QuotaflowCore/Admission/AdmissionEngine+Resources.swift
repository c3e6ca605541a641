import HashTreeCollections
import Synchronization

/// Resource selection and the resource board's operations.
extension AdmissionEngine {
    /// Seconds until some resource this request could use has room again, from time alone: a
    /// cooldown ends, a rate-limit slot or usage window frees, an idle lease returns, a spending cap's
    /// period ends. 1 when none is known (a request in flight may finish any moment).
    static func retryAfterSeconds(_ s: inout State, _ r: AdmissionRequest) -> Int64 {
        var best: Int64?
        for resource in r.catalog.resourcesByTenant[r.tenant.id] ?? [] {
            let res = resource.resource
            guard res.kind != .overflow || r.project.overflowAllowed, r.fits(resource), res.state.isRoutable || res.state == .cooling else {
                continue
            }
            var rt = s.board.resources[resource.id] ?? ResourceRuntime()
            var at = rt.roomAt(res, model: r.model, holder: r.holder, tokens: r.shape.worstTokens, leaseIdleMs: r.leaseIdleMs, now: r.now)
            s.board.resources[resource.id] = rt
            let capKey: BudgetKey = res.kind == .overflow ? .overflowCredit(resource.id) : .resource(resource.id)
            if let c = s.book.counters[capKey],
                let cap = CounterSpec.of(capKey, catalog: r.catalog, tenantId: r.tenant.id, projectId: r.project.id, keyCap: nil).cap,
                c.spent + c.reserved >= cap + c.carry
            {
                at = max(at, c.period.end)
            }
            best = min(best ?? at, at)
        }
        guard let best else { return 1 }
        return max(1, (best - r.now + 999) / 1000)
    }

    public func retryAfterSeconds(_ r: AdmissionRequest) -> Int64 { state.withLock { Self.retryAfterSeconds(&$0, r) } }

    /// The request left its resource: frees the slot and corrects the token estimate.
    public func release(resourceId: String, estimatedTokens: Int64, actualTokens: Int64?, now: Int64) {
        state.withLock { $0.board.release(resourceId, estimatedTokens: estimatedTokens, actualTokens: actualTokens, now: now) }
    }

    /// Cools a resource in memory at once; `true` when this call extended the cooldown.
    public func cool(resourceId: String, until: Int64) -> Bool { state.withLock { $0.board.cool(resourceId, until: until) } }

    /// Takes one model off a resource until `until`; `true` when this call extended it.
    public func coolModel(resourceId: String, model: String, until: Int64, forgetBefore: Int64) -> Bool {
        state.withLock { $0.board.coolModel(resourceId, model: model, until: until, forgetBefore: forgetBefore) }
    }

    public func clearCooling(resourceId: String) { state.withLock { $0.board.clearCooling(resourceId) } }

    /// Takes in what an answer said about a credential's windows (`holder` is `""` for the
    /// resource's own credential, the key id for a passthrough holder's); returns the merged set.
    public func observeWindows(resourceId: String, holder: String, report: WindowReport, now: Int64) -> WindowSet {
        state.withLock { $0.board.observe(resourceId, holder: holder, report: report, now: now) }
    }

    /// Cools one passthrough holder's own subscription; `true` when this call extended it.
    public func coolHolder(resourceId: String, holder: String, until: Int64, now: Int64) -> Bool {
        state.withLock { $0.board.coolHolder(resourceId, holder: holder, until: until, now: now) }
    }

    /// The windows last seen for one credential.
    public func windows(resourceId: String, holder: String) -> WindowSet? { state.withLock { $0.board.resources[resourceId]?.windowSets[holder] } }

    /// Conversations currently bound to a resource.
    public var sessionCount: Int { state.withLock { $0.sessions.count } }

    /// Candidates the last selection walk looked at.
    var lastWalkExamined: Int { state.withLock { $0.board.index.examined } }

    /// Every resource's runtime, for metrics and reports.
    /// Requests now running on one resource.
    public func inFlight(resourceId: String) -> Int64 { state.withLock { $0.board.resources[resourceId]?.inFlight ?? 0 } }

    public func resourceSnapshot() -> [String: ResourceRuntime] { state.withLock { $0.board.resources } }
}

/// Budgets, settlement and rate limits.
extension AdmissionEngine {
    /// Moves holds to spend for committed rows (on the ledger thread, after the commit). Returns the
    /// counters that changed, for threshold alerts.
    /// `fleetSpend`: a fleet's spend on the counters it changed (by key and period start), which
    /// replaces what this process counted; the fleet counts every replica's rows.
    public func settle(_ items: [(Settlement, Int64)], fleetSpend: [CounterSpend] = []) -> [(BudgetKey, BudgetCounter)] {
        state.withLock { s in
            var touched: [BudgetKey: BudgetCounter] = [:]
            for (settlement, at) in items { s.book.settle(settlement, at: at, touched: &touched) }
            s.book.adopt(fleetSpend, touched: &touched)
            return touched.map { ($0.key, $0.value) }
        }
    }

    /// Takes the fleet's spend on counters a hold just read.
    public func adopt(_ spend: [CounterSpend]) {
        guard !spend.isEmpty else { return }
        state.withLock { s in
            var touched: [BudgetKey: BudgetCounter] = [:]
            s.book.adopt(spend, touched: &touched)
        }
    }

    /// Marks a threshold as fired; `false` if it already was this period.
    public func markFired(_ key: BudgetKey, threshold: Int, periodStart: Int64) -> Bool {
        state.withLock { $0.book.markFired(key, threshold: threshold, periodStart: periodStart) }
    }

    /// Replaces counters with values recomputed from the ledger, and what already fired.
    public func load(_ recomputed: Reconciler.Result) {
        state.withLock { s in
            s.book.replaceSpend(recomputed.spend)
            s.book.loadFired(recomputed.fired)
        }
    }

    public func counterSnapshot(_ key: BudgetKey) -> BudgetCounter? { state.withLock { $0.book.counters[key] } }
    public func allCounters() -> [BudgetKey: BudgetCounter] { state.withLock { $0.book.counters } }
    public var reservationsHeld: Int64 { state.withLock { $0.book.reservationsHeld } }

    /// Takes every rate limit or none; in audit enforcement takes them all and reports what would have refused.
    public func rateLimit(_ checks: [RateCheck], now: Int64, enforce: Bool) -> Result<[LedgerFlag], Denial> {
        state.withLock { $0.limiters.take(checks, now: now, enforce: enforce) }
    }

    public func refundTokens(key: LimiterKey, limit: Int64, tokens: Int64) {
        state.withLock { $0.limiters.refund(key, limit: limit, cost: tokens) }
    }

    public func remaining(limiter key: LimiterKey, limit: Int64, now: Int64) -> Int64 {
        state.withLock { $0.limiters.remaining(key, limit: limit, now: now) }
    }

    /// Drops limiter entries with no debt left.
    public func pruneLimiters(now: Int64) { state.withLock { $0.limiters.prune(now: now) } }
}
