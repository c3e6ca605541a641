/// Which counters a request is charged to. Admission holds exactly these counters, settlement
/// moves the holds to spend, and reconciliation recomputes every counter from ledger rows with the
/// same rules, so the three can never disagree.
public enum Charging {
    /// The facts of one request that decide its counters.
    public struct Facts: Sendable, Equatable {
        public var tenantId: String
        /// The project and its ancestors, innermost first.
        public var chain: [String]
        public var keyId: String?
        public var seatId: String?
        public var resourceId: String?
        public var overflow: Bool
        /// Set when an overage policy admitted the request.
        public var overage: OverageKind?
        /// The project whose budget was exceeded (and whose overage policy applied).
        public var overageProjectId: String?

        public init(
            tenantId: String, chain: [String], keyId: String? = nil, seatId: String? = nil, resourceId: String? = nil, overflow: Bool = false,
            overage: OverageKind? = nil, overageProjectId: String? = nil
        ) {
            self.tenantId = tenantId
            self.chain = chain
            self.keyId = keyId
            self.seatId = seatId
            self.resourceId = resourceId
            self.overflow = overflow
            self.overage = overage
            self.overageProjectId = overageProjectId
        }
    }

    /// Counters charged at list cost (budgets) — everything but resource and overflow caps.
    public static func budgetCounters(_ f: Facts) -> [BudgetKey] {
        var out: [BudgetKey] = []
        if let k = f.keyId { out.append(.key(k)) }
        if let s = f.seatId { out.append(.seat(s)) }
        for p in f.chain {
            if f.overage != nil, p == f.overageProjectId { break }
            out.append(.project(p))
        }
        if f.overage == .fallback, let p = f.overageProjectId { out.append(.projectFallback(p)) }
        if f.overage != .overflow { out.append(.tenant(f.tenantId)) }
        return out
    }

    /// Counters charged at upstream (marginal) cost: the serving resource's cap and overflow caps.
    public static func upstreamCounters(_ f: Facts) -> [BudgetKey] {
        guard let r = f.resourceId else { return [] }
        if f.overflow { return [.overflowCredit(r)] + f.chain.map { .projectOverflow($0) } }
        return [.resource(r)]
    }

    /// Every counter of the request with the amount it is charged from `cost` (list) and `upstream`.
    public static func charges(_ f: Facts, cost: Int64, upstream: Int64) -> [(BudgetKey, Int64)] {
        budgetCounters(f).map { ($0, cost) } + upstreamCounters(f).map { ($0, upstream) }
    }
}

/// The parts of a ledger row that decide its charges, read back to recompute counters.
public struct LedgerCharge: Sendable, Equatable {
    public var at: Int64
    public var tenantId: String
    public var projectId: String
    public var keyId: String?
    public var seatId: String?
    public var resourceId: String?
    public var overflow: Bool
    public var overage: OverageKind?
    public var overageProjectId: String?
    public var costMicros: Int64
    public var upstreamCostMicros: Int64

    public init(
        at: Int64, tenantId: String, projectId: String, keyId: String?, seatId: String?, resourceId: String?, overflow: Bool, overage: OverageKind?,
        overageProjectId: String?, costMicros: Int64, upstreamCostMicros: Int64
    ) {
        self.at = at
        self.tenantId = tenantId
        self.projectId = projectId
        self.keyId = keyId
        self.seatId = seatId
        self.resourceId = resourceId
        self.overflow = overflow
        self.overage = overage
        self.overageProjectId = overageProjectId
        self.costMicros = costMicros
        self.upstreamCostMicros = upstreamCostMicros
    }

    /// The charging facts, given the project chain of its project (innermost first).
    public func facts(chain: [String]) -> Charging.Facts {
        Charging.Facts(
            tenantId: tenantId, chain: chain.isEmpty ? [projectId] : chain, keyId: keyId, seatId: seatId, resourceId: resourceId,
            overflow: overflow, overage: overage, overageProjectId: overageProjectId)
    }
}

extension LedgerEntry {
    /// Takes who pays and what from `c` (its tenant, project and time are the entry's own).
    public mutating func take(_ c: LedgerCharge) {
        keyId = c.keyId
        seatId = c.seatId
        resourceId = c.resourceId
        overflow = c.overflow
        overage = c.overage
        overageProjectId = c.overageProjectId
        costMicros = c.costMicros
        upstreamCostMicros = c.upstreamCostMicros
    }
}
