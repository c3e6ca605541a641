import QuotaflowCore
import QuotaflowStore
import Synchronization

/// Recomputes budget counters from ledger rows, with the same charging rules as admission.
enum CounterMath {
    struct Value {
        var spent: Int64 = 0
        var previous: Int64 = 0
    }

    struct Result {
        var spend: [BudgetKey: (spent: Int64, previous: Int64, period: BillingPeriod, anchor: PeriodAnchor, carry: Int64)]
        var fired: [BudgetKey: (periodStart: Int64, thresholds: Set<Int>)]
    }

    /// Sums the ledger of the current and previous periods into every counter.
    static func compute(_ conn: SQLiteConnection, catalog: Catalog, now: Int64, engine: Engine, tenantId: String? = nil) throws -> Result {
        var values: [BudgetKey: Value] = [:]
        var periods: [BudgetKey: (BillingPeriod, BillingPeriod, PeriodAnchor, Engine.CounterSpec)] = [:]
        var chains: [String: [String]] = [:]
        func period(_ key: BudgetKey, tenant: String, project: String, keyCap: Int64?) -> (BillingPeriod, BillingPeriod, PeriodAnchor, Engine.CounterSpec) {
            if let p = periods[key] { return p }
            let spec = Engine.spec(key, catalog: catalog, tenantId: tenant, projectId: project, keyCap: keyCap, grants: 0)
            let current = BillingPeriod.containing(now, anchor: spec.anchor)
            let entry = (current, current.previous(anchor: spec.anchor), spec.anchor, spec)
            periods[key] = entry
            return entry
        }
        let since = now - 70 * 86_400_000
        try conn.forEachCharge(since: since, tenantId: tenantId) { row in
            let chain: [String]
            if let cached = chains[row.projectId] {
                chain = cached
            } else {
                chain = catalog.projectChain(row.projectId).map(\.id)
                chains[row.projectId] = chain
            }
            for (key, amount) in Charging.charges(row.facts(chain: chain), cost: row.costMicros, upstream: row.upstreamCostMicros) {
                let (current, previous, _, _) = period(key, tenant: row.tenantId, project: row.projectId, keyCap: nil)
                if current.contains(row.at) {
                    values[key, default: Value()].spent += amount
                } else if previous.contains(row.at) {
                    values[key, default: Value()].previous += amount
                }
            }
        }
        // Counters the engine knows but the ledger has nothing for are zero.
        for (key, c) in engine.allCounters() where values[key] == nil {
            if let tenantId, !engine.counterBelongs(key, tenantId: tenantId, catalog: catalog) { continue }
            values[key] = Value()
            periods[key] = periods[key] ?? (BillingPeriod.containing(now, anchor: c.anchor), BillingPeriod.containing(now, anchor: c.anchor).previous(anchor: c.anchor), c.anchor, Engine.CounterSpec(anchor: c.anchor, cap: c.capForCarry, rolloverPercent: c.rolloverPercent))
        }
        var spend: [BudgetKey: (spent: Int64, previous: Int64, period: BillingPeriod, anchor: PeriodAnchor, carry: Int64)] = [:]
        for (key, v) in values {
            guard let (current, _, anchor, spec) = periods[key] else { continue }
            var carry: Int64 = 0
            if case .project = key, let cap = spec.cap, spec.rolloverPercent > 0 {
                carry = BillingPeriod.carry(cap: cap, previousSpend: v.previous, percent: spec.rolloverPercent)
            }
            spend[key] = (v.spent, v.previous, current, anchor, carry)
        }
        var fired: [BudgetKey: (periodStart: Int64, thresholds: Set<Int>)] = [:]
        for alert in try conn.firedAlerts(since: since) {
            guard let current = spend[alert.key]?.period ?? periods[alert.key]?.0, current.start == alert.periodStart else { continue }
            fired[alert.key, default: (current.start, [])].thresholds.insert(alert.threshold)
        }
        return Result(spend: spend, fired: fired)
    }
}

extension Engine {
    func loadFired(_ fired: [BudgetKey: (periodStart: Int64, thresholds: Set<Int>)]) {
        state.withLock { s in
            for (key, f) in fired {
                guard var c = s.counters[key], c.period.start == f.periodStart else { continue }
                c.fired.formUnion(f.thresholds)
                s.counters[key] = c
            }
        }
    }

    /// Whether a counter belongs to a tenant (for per-tenant reconciliation).
    func counterBelongs(_ key: BudgetKey, tenantId: String, catalog: Catalog) -> Bool {
        switch key {
        case .tenant(let id): return id == tenantId
        case .project(let id), .projectFallback(let id), .projectOverflow(let id): return catalog.projects[id]?.tenantId == tenantId
        case .resource(let id), .overflowCredit(let id): return catalog.resource(id, tenantId: tenantId) != nil
        case .key(let id), .seat(let id): return catalog.keysById[id]?.tenantId == tenantId
        }
    }
}
