import HashTreeCollections
import Synchronization

/// What admission decided for one request.
public struct Admission: Sendable {
    /// What is held on each counter until the row is committed.
    public var reservation: Reservation
    public var resource: RoutableResource
    public var facts: Charging.Facts
    /// The worst case at list price (budgets) and at the serving resource's marginal cost (caps).
    public var worstCase: Int64
    public var upstreamWorstCase: Int64
    /// Audit enforcement: the limits that would have refused.
    public var flags: [LedgerFlag]
    /// What the tightest budget leaves after this request's worst case, if any budget caps it.
    public var budgetRemaining: Int64?
    /// Resources tried so far, in order.
    public var tried: [String]
    /// Why the router chose the resource, and the resource a moved conversation was bound to.
    public var routeReason: RouteReason = .leastLoaded
    public var movedFrom: String?
    /// Each counter held, in the period held, with the limit it was checked against: what a fleet
    /// of replicas checks again on the shared counters.
    public var levels: [HeldLevel] = []
    /// In a fleet: a reservation row holds this request's shared holds and leases.
    public var sharedHold = false
    /// Who held the chosen exclusive seat here before this admission (given back if the fleet refuses).
    public var previousLeaseHolder: String?
}

/// One counter an admission holds on: its period, the limit checked (`nil`: no cap, or audit
/// enforcement), the amount held, and the spend this process counted.
public struct HeldLevel: Sendable, Equatable {
    public var key: BudgetKey
    public var periodStart: Int64
    public var limit: Int64?
    public var amount: Int64
    public var spent: Int64

    public init(key: BudgetKey, periodStart: Int64, limit: Int64?, amount: Int64, spent: Int64) {
        self.key = key
        self.periodStart = periodStart
        self.limit = limit
        self.amount = amount
        self.spent = spent
    }
}

/// All hot-path state behind one lock: budget counters, resource load and leases, cooldowns and
/// rate limiters. Admission — check every budget level, hold the worst case, pick a resource — is
/// one critical section, so concurrent requests can never both take the last of a budget. The lock
/// model was measured: no actors on the hot path.
public final class AdmissionEngine: Sendable {
    public enum Outcome: Sendable {
        case admitted(Admission)
        case denied(Denial)
        /// A project budget does not fit; its overage policy decides what happens next.
        case overBudget(projectId: String, detail: String, periodEnd: Int64)
    }

    struct State {
        var book = BudgetBook()
        var board = ResourceBoard()
        var limiters = RateLimiters()
        var sessions = SessionBook()
    }

    let state = Mutex(State())

    public init() {}

    /// Checks every budget level at list cost, holds the worst case on each, and picks a resource:
    /// owned capacity first, overflow only when nothing owned is eligible and the project allows it.
    public func admit(_ r: AdmissionRequest) -> Outcome {
        let worst = r.shape.worstCost(at: r.listPrice)
        var facts = r.facts
        return state.withLock { s -> Outcome in
            var flags: [LedgerFlag] = []
            var holds: [(BudgetKey, Int64)] = []
            var levels: [HeldLevel] = []
            var remaining: Int64?
            for key in Charging.budgetCounters(facts) {
                let grants: Int64 = if case .project(let id) = key { r.grants[id] ?? 0 } else { 0 }
                let spec = CounterSpec.of(
                    key, catalog: r.catalog, tenantId: r.tenant.id, projectId: r.project.id, keyCap: r.key.budgetCapMicros, grants: grants)
                let c = s.book.counter(key, spec: spec, now: r.now)
                if let cap = spec.cap {
                    let limit = cap + c.carry
                    let left = limit - c.spent - c.reserved
                    if worst > left {
                        let detail = Self.describe(
                            key, catalog: r.catalog, used: c.spent + c.reserved, limit: limit, periodEnd: c.period.end, worst: worst, shape: r.shape)
                        if r.enforce {
                            if case .project(let id) = key { return .overBudget(projectId: id, detail: detail, periodEnd: c.period.end) }
                            return .denied(Denial(.quotaExceeded, detail, resetsAt: c.period.end))
                        }
                        flags.append(.wouldRefuse(.quotaExceeded))
                    }
                    remaining = min(remaining ?? Int64.max, left - worst)
                }
                holds.append((key, worst))
                levels.append(
                    HeldLevel(
                        key: key, periodStart: c.period.start, limit: r.enforce ? spec.cap.map { $0 + c.carry } : nil, amount: worst, spent: c.spent))
            }
            var choice: Selection?
            if r.overage?.kind != .overflow { choice = Self.select(&s, r, overflow: false, excluding: []) }
            if choice == nil, r.project.overflowAllowed, r.overage?.kind != .fallback { choice = Self.select(&s, r, overflow: true, excluding: []) }
            guard let choice else {
                var message =
                    "no resource in this project's pools can take a \(r.model) request right now"
                    + (r.project.overflowAllowed ? "" : " (overflow is not enabled for this project)")
                // Say so when only the betas asked for kept a resource out: a retry cannot fix that.
                if !r.betas.isEmpty, (r.catalog.resourcesByTenant[r.tenant.id] ?? []).contains(where: { !$0.resource.accepts(betas: r.betas) }) {
                    let missing = Set(
                        r.betas.filter { b in
                            (r.catalog.resourcesByTenant[r.tenant.id] ?? []).contains { !$0.resource.accepts(betas: [b]) }
                        })
                    message +=
                        "; the anthropic-beta feature(s) \(missing.sorted().joined(separator: ", ")) are not available on some of them"
                        + " (cloud platforms accept only their own list of betas)"
                }
                return .denied(Denial(.noCapacity, message, retryAfterSeconds: Self.retryAfterSeconds(&s, r)))
            }
            let (resource, upstreamWorst) = (choice.resource, choice.upstreamWorst)
            facts.overflow = resource.resource.kind == .overflow
            facts.resourceId = resource.id
            levels += Self.holdUpstream(&s, r, facts: facts, amount: upstreamWorst, overflow: facts.overflow)
            for key in Charging.upstreamCounters(facts) { holds.append((key, upstreamWorst)) }
            for (key, amount) in holds { s.book.hold(key, amount) }
            s.book.reservationsHeld += 1
            let previousLeaseHolder = s.board.resources[resource.id]?.leaseHolder
            s.board.take(resource, request: r)
            return .admitted(
                Admission(
                    reservation: Reservation(holds: holds), resource: resource, facts: facts, worstCase: worst, upstreamWorstCase: upstreamWorst,
                    flags: flags, budgetRemaining: remaining, tried: [resource.id], routeReason: choice.reason, movedFrom: choice.movedFrom,
                    levels: levels, previousLeaseHolder: previousLeaseHolder))
        }
    }

    /// Chooses the next resource after a retryable failure, keeping the budget holds. `false` when
    /// none is left (the failed resource's upstream holds are released either way).
    public func reselect(_ admission: inout Admission, request r: AdmissionRequest) -> Bool {
        state.withLock { s -> Bool in
            let oldUpstream = Set(Charging.upstreamCounters(admission.facts))
            var kept: [(BudgetKey, Int64)] = []
            for (key, amount) in admission.reservation.holds {
                if oldUpstream.contains(key) { s.book.unhold(key, amount) } else { kept.append((key, amount)) }
            }
            var facts = admission.facts
            var choice: Selection?
            if !facts.overflow && r.overage?.kind != .overflow { choice = Self.select(&s, r, overflow: false, excluding: Set(admission.tried)) }
            if choice == nil, r.project.overflowAllowed, r.overage?.kind != .fallback {
                choice = Self.select(&s, r, overflow: true, excluding: Set(admission.tried))
            }
            guard let choice else {
                admission.reservation = Reservation(holds: kept)
                facts.resourceId = nil
                admission.facts = facts
                return false
            }
            let (resource, upstreamWorst) = (choice.resource, choice.upstreamWorst)
            facts.overflow = resource.resource.kind == .overflow
            facts.resourceId = resource.id
            admission.levels =
                admission.levels.filter { !oldUpstream.contains($0.key) }
                + Self.holdUpstream(&s, r, facts: facts, amount: upstreamWorst, overflow: facts.overflow)
            for key in Charging.upstreamCounters(facts) {
                s.book.hold(key, upstreamWorst)
                kept.append((key, upstreamWorst))
            }
            admission.previousLeaseHolder = s.board.resources[resource.id]?.leaseHolder
            s.board.take(resource, request: r)
            admission.reservation = Reservation(holds: kept)
            admission.facts = facts
            admission.resource = resource
            admission.upstreamWorstCase = upstreamWorst
            admission.tried.append(resource.id)
            admission.routeReason = choice.reason
            admission.movedFrom = choice.movedFrom ?? admission.movedFrom
            return true
        }
    }

    /// The levels of the serving resource's counters (its spending cap, or the overflow caps).
    static func holdUpstream(_ s: inout State, _ r: AdmissionRequest, facts: Charging.Facts, amount: Int64, overflow: Bool) -> [HeldLevel] {
        Charging.upstreamCounters(facts).map { key in
            let spec = CounterSpec.of(key, catalog: r.catalog, tenantId: r.tenant.id, projectId: r.project.id, keyCap: nil)
            let c = s.book.counter(key, spec: spec, now: r.now)
            // The overflow caps of projects carry nothing over; a resource's cap has the tenant's carry (none).
            return HeldLevel(key: key, periodStart: c.period.start, limit: spec.cap.map { $0 + c.carry }, amount: amount, spent: c.spent)
        }
    }

    static func budgetName(_ key: BudgetKey, catalog: Catalog) -> String {
        switch key {
        case .project(let id): "the budget of project '\(catalog.projects[id]?.name ?? id)'"
        case .tenant: "the tenant's monthly limit"
        case .key: "this key's budget"
        case .seat: "this seat's budget"
        case .projectFallback(let id): "the fallback budget of project '\(catalog.projects[id]?.name ?? id)'"
        default: "a spending cap"
        }
    }

    /// Why a request does not fit a budget shared by a fleet of replicas.
    public static func describeShared(_ key: BudgetKey, catalog: Catalog, periodEnd: Int64, worst: Int64) -> String {
        "this request's worst case (\(Money.format(worst))) does not fit what is left of \(budgetName(key, catalog: catalog)) this period, "
            + "counting what requests on every replica have spent and hold; the period ends \(Timestamp.format(periodEnd))"
    }

    /// Gives an exclusive seat chosen for `holder` back to whoever held it here before.
    public func unlease(_ a: Admission, holder: String, now: Int64) {
        guard a.resource.resource.leaseMode == .exclusive else { return }
        state.withLock { $0.board.unlease(a.resource.id, holder: holder, previous: a.previousLeaseHolder, now: now) }
    }

    /// Gives back everything an admission took (the fleet refused it): its holds and its slot.
    public func abandon(_ a: Admission, now: Int64, estimatedTokens: Int64, releasingSlot: Bool = true, holder: String? = nil) {
        state.withLock { s in
            if let holder, a.resource.resource.leaseMode == .exclusive {
                s.board.unlease(a.resource.id, holder: holder, previous: a.previousLeaseHolder, now: now)
            }
            for (key, amount) in a.reservation.holds { s.book.unhold(key, amount) }
            s.book.reservationsHeld -= 1
            if releasingSlot { s.board.release(a.resource.id, estimatedTokens: estimatedTokens, actualTokens: 0, now: now) }
        }
    }

    /// Why a request does not fit a budget. When money is left but not enough for this request's
    /// worst case, the message says so and how to lower it, instead of blaming the budget.
    static func describe(_ key: BudgetKey, catalog: Catalog, used: Int64, limit: Int64, periodEnd: Int64, worst: Int64, shape: CostShape) -> String {
        let name = budgetName(key, catalog: catalog)
        let left = limit - used
        if left > 0 {
            return "this request's worst case (\(Money.format(worst)) at \(shape.explanation)) exceeds the \(Money.format(left)) left of "
                + "\(name) this period, which ends \(Timestamp.format(periodEnd)); set max_tokens lower"
        }
        return "\(name) is used up: \(Money.format(used)) of \(Money.format(limit)) this period, which ends \(Timestamp.format(periodEnd))"
    }
}
