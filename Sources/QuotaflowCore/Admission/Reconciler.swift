import HashTreeCollections

/// A counter's value recomputed from the ledger.
public struct RecomputedCounter: Sendable, Equatable {
    public var spent: Int64
    public var previous: Int64
    public var period: BillingPeriod
    public var anchor: PeriodAnchor
    public var carry: Int64
}

/// Recomputes budget counters from ledger rows with the same charging rules as admission, so
/// counters can always be rebuilt from the ledger and checked against it.
public struct Reconciler {
    public struct Result: Sendable {
        public var spend: [BudgetKey: RecomputedCounter]
        public var fired: [BudgetKey: (periodStart: Int64, thresholds: Set<Int>)]
    }

    struct Sums {
        var spent: Int64 = 0
        var previous: Int64 = 0
    }

    /// How far back rows matter: the current and the previous period of any anchor.
    public static func since(now: Int64) -> Int64 { now - 70 * 86_400_000 }

    let catalog: Catalog
    let now: Int64
    var sums: [BudgetKey: Sums] = [:]
    var periods: [BudgetKey: (current: BillingPeriod, previous: BillingPeriod, spec: CounterSpec)] = [:]
    var chains: [String: [String]] = [:]

    public init(catalog: Catalog, now: Int64) {
        self.catalog = catalog
        self.now = now
    }

    mutating func period(_ key: BudgetKey, tenant: String, project: String) -> (current: BillingPeriod, previous: BillingPeriod, spec: CounterSpec) {
        if let p = periods[key] { return p }
        let spec = CounterSpec.of(key, catalog: catalog, tenantId: tenant, projectId: project, keyCap: nil)
        let current = BillingPeriod.containing(now, anchor: spec.anchor)
        let entry = (current, current.previous(anchor: spec.anchor), spec)
        periods[key] = entry
        return entry
    }

    /// Adds one ledger row's charges.
    public mutating func add(_ row: LedgerCharge) {
        let chain: [String]
        if let cached = chains[row.projectId] {
            chain = cached
        } else {
            chain = catalog.projectChain(row.projectId).map(\.id)
            chains[row.projectId] = chain
        }
        for (key, amount) in Charging.charges(row.facts(chain: chain), cost: row.costMicros, upstream: row.upstreamCostMicros) {
            let p = period(key, tenant: row.tenantId, project: row.projectId)
            if p.current.contains(row.at) {
                sums[key, default: Sums()].spent += amount
            } else if p.previous.contains(row.at) {
                sums[key, default: Sums()].previous += amount
            }
        }
    }

    /// The recomputed counters. Counters the engine knows (`known`) that the ledger has nothing for
    /// are zero; `fired` are the thresholds recorded as fired, kept for their current period only.
    public mutating func result(known: [BudgetKey: BudgetCounter], fired: [(key: BudgetKey, periodStart: Int64, threshold: Int)]) -> Result {
        for (key, c) in known where sums[key] == nil {
            sums[key] = Sums()
            if periods[key] == nil {
                let current = BillingPeriod.containing(now, anchor: c.anchor)
                periods[key] = (
                    current, current.previous(anchor: c.anchor), CounterSpec(anchor: c.anchor, cap: c.capForCarry, rolloverPercent: c.rolloverPercent)
                )
            }
        }
        var spend: [BudgetKey: RecomputedCounter] = [:]
        for (key, v) in sums {
            guard let p = periods[key] else { continue }
            var carry: Int64 = 0
            if case .project = key, let cap = p.spec.cap, p.spec.rolloverPercent > 0 {
                carry = BillingPeriod.carry(cap: cap, previousSpend: v.previous, percent: p.spec.rolloverPercent)
            }
            spend[key] = RecomputedCounter(spent: v.spent, previous: v.previous, period: p.current, anchor: p.spec.anchor, carry: carry)
        }
        var out: [BudgetKey: (periodStart: Int64, thresholds: Set<Int>)] = [:]
        for f in fired {
            guard let current = spend[f.key]?.period ?? periods[f.key]?.current, current.start == f.periodStart else { continue }
            out[f.key, default: (current.start, [])].thresholds.insert(f.threshold)
        }
        return Result(spend: spend, fired: out)
    }

    /// Whether a counter belongs to a tenant (for one tenant's reconciliation).
    public static func belongs(_ key: BudgetKey, to tenantId: String, catalog: Catalog) -> Bool {
        switch key {
        case .tenant(let id): return id == tenantId
        case .project(let id), .projectFallback(let id), .projectOverflow(let id): return catalog.projects[id]?.tenantId == tenantId
        case .resource(let id), .overflowCredit(let id): return catalog.resource(id, tenantId: tenantId) != nil
        case .key(let id), .seat(let id): return catalog.keysById[id]?.tenantId == tenantId
        }
    }
}
