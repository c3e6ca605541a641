import HashTreeCollections

/// One budget counter: this period's spend and holds, with the rollover carried in.
public struct BudgetCounter: Sendable, Equatable {
    public var anchor: PeriodAnchor
    public var period: BillingPeriod
    public var spent: Int64 = 0
    public var reserved: Int64 = 0
    public var carry: Int64 = 0
    public var previousSpent: Int64 = 0
    /// Alert thresholds (percent) already fired this period.
    public var fired: Set<Int> = []
    public var rolloverPercent: Int = 0
    public var capForCarry: Int64?

    public init(anchor: PeriodAnchor, period: BillingPeriod, rolloverPercent: Int = 0, capForCarry: Int64? = nil) {
        self.anchor = anchor
        self.period = period
        self.rolloverPercent = rolloverPercent
        self.capForCarry = capForCarry
    }

    /// Moves to the period holding `now`, carrying unused budget when the budget rolls over.
    public mutating func roll(now: Int64) {
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

/// A counter's spend in one period, as counted elsewhere (a fleet's shared counters).
public struct CounterSpend: Sendable, Equatable {
    public var key: BudgetKey
    public var periodStart: Int64
    public var spent: Int64

    public init(key: BudgetKey, periodStart: Int64, spent: Int64) {
        self.key = key
        self.periodStart = periodStart
        self.spent = spent
    }
}

/// Where a counter's period comes from and what caps it.
public struct CounterSpec: Sendable, Equatable {
    public var anchor: PeriodAnchor
    public var cap: Int64?
    public var rolloverPercent: Int = 0

    public init(anchor: PeriodAnchor, cap: Int64?, rolloverPercent: Int = 0) {
        self.anchor = anchor
        self.cap = cap
        self.rolloverPercent = rolloverPercent
    }

    /// The spec of `key` from the catalog. `grants` raises a project's cap (approvals in force).
    public static func of(_ key: BudgetKey, catalog: Catalog, tenantId: String, projectId: String?, keyCap: Int64?, grants: Int64 = 0) -> CounterSpec
    {
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
}

/// Every budget counter: spend and holds per period. Not thread-safe by itself; the admission
/// engine holds it under its one lock.
public struct BudgetBook: Sendable {
    public internal(set) var counters: [BudgetKey: BudgetCounter] = [:]
    /// Requests holding a reservation now.
    public internal(set) var reservationsHeld: Int64 = 0

    public init() {}

    /// The counter of `key` in the period holding `now`, created or rolled as needed.
    public mutating func counter(_ key: BudgetKey, spec: CounterSpec, now: Int64) -> BudgetCounter {
        if var c = counters[key] {
            if c.anchor != spec.anchor {
                // The period definition changed: start the new period with what is known; the runtime
                // recomputes it from the ledger right after.
                c.anchor = spec.anchor
                c.period = BillingPeriod.containing(now, anchor: spec.anchor)
            }
            c.rolloverPercent = spec.rolloverPercent
            c.capForCarry = spec.cap
            c.roll(now: now)
            counters[key] = c
            return c
        }
        let c = BudgetCounter(
            anchor: spec.anchor, period: BillingPeriod.containing(now, anchor: spec.anchor), rolloverPercent: spec.rolloverPercent,
            capForCarry: spec.cap)
        counters[key] = c
        return c
    }

    mutating func hold(_ key: BudgetKey, _ amount: Int64) { counters[key]?.reserved += amount }
    mutating func unhold(_ key: BudgetKey, _ amount: Int64) { counters[key]?.reserved -= amount }

    /// Moves one request's holds to spend (its row is committed); returns the counters it changed.
    mutating func settle(_ settlement: Settlement, at: Int64, touched: inout [BudgetKey: BudgetCounter]) {
        for (key, amount) in settlement.reservation.holds { counters[key]?.reserved -= amount }
        if !settlement.reservation.holds.isEmpty { reservationsHeld -= 1 }
        for (key, amount) in settlement.charges {
            guard var c = counters[key] else { continue }
            c.roll(now: at)
            if c.period.contains(at) {
                c.spent += amount
            } else if at < c.period.start {
                c.previousSpent += amount
            }
            counters[key] = c
            touched[key] = c
        }
    }

    /// Replaces spend with the fleet's, for counters still in the period it counted.
    mutating func adopt(_ spend: [CounterSpend], touched: inout [BudgetKey: BudgetCounter]) {
        for v in spend {
            guard var c = counters[v.key], c.period.start == v.periodStart, c.spent != v.spent else { continue }
            c.spent = v.spent
            counters[v.key] = c
            touched[v.key] = c
        }
    }

    /// Marks a threshold as fired; `false` if it already was this period.
    mutating func markFired(_ key: BudgetKey, threshold: Int, periodStart: Int64) -> Bool {
        guard var c = counters[key], c.period.start == periodStart else { return false }
        let inserted = c.fired.insert(threshold).inserted
        counters[key] = c
        return inserted
    }

    /// Replaces spend with values recomputed from the ledger.
    mutating func replaceSpend(_ values: [BudgetKey: RecomputedCounter]) {
        for (key, v) in values {
            var c = counters[key] ?? BudgetCounter(anchor: v.anchor, period: v.period)
            c.anchor = v.anchor
            c.period = v.period
            c.spent = v.spent
            c.previousSpent = v.previous
            c.carry = v.carry
            counters[key] = c
        }
    }

    mutating func loadFired(_ fired: [BudgetKey: (periodStart: Int64, thresholds: Set<Int>)]) {
        for (key, f) in fired {
            guard var c = counters[key], c.period.start == f.periodStart else { continue }
            c.fired.formUnion(f.thresholds)
            counters[key] = c
        }
    }
}
