import HashTreeCollections
import Synchronization

/// Resource selection: which eligible resource takes a request.
extension AdmissionEngine {
    /// A chosen resource, its marginal worst case, and why.
    struct Selection {
        var resource: RoutableResource
        var upstreamWorst: Int64
        var reason: RouteReason
        var movedFrom: String?
    }

    /// The eligible resource the routing policy prefers, and its marginal worst case. Eligible: in
    /// the project's pools, of the tenant, routable, of the request's mode (passthrough or not),
    /// serving the request's API family and model (not cooled for it), the one pinned when the
    /// request continues a stored response, not cooling and not refused by a usage window, under
    /// every limit, leasable by this holder, and within its spending cap (and the overflow caps up
    /// the chain for overflow). The conversation is bound to the choice.
    ///
    /// Shared resources are found through the selection index (`walk`); a pinned request looks at
    /// its one resource, a passthrough request at the holder-facing lanes, which are few.
    static func select(_ s: inout State, _ r: AdmissionRequest, overflow: Bool, excluding: Set<String>) -> Selection? {
        let sessionKey = r.sessionKey
        let boundTo = sessionKey.flatMap { s.sessions.bound($0, now: r.now) }
        let found =
            r.pinnedResourceId != nil || r.passthrough
            ? scan(&s, r, overflow: overflow, excluding: excluding, boundTo: boundTo)
            : walk(&s, r, overflow: overflow, excluding: excluding, boundTo: boundTo)
        guard let (chosen, choiceReason) = found else { return nil }
        var reason = choiceReason
        var movedFrom: String?
        if r.pinnedResourceId != nil {
            reason = .pinned
        } else if let boundTo, boundTo != chosen.resource.id {
            reason = .sessionMoved
            movedFrom = boundTo
        } else if chosen.resource.resource.leaseMode == .passthrough, reason != .session {
            reason = .passthrough
        }
        if let sessionKey { s.sessions.bind(sessionKey, to: chosen.resource.id, now: r.now) }
        return Selection(resource: chosen.resource, upstreamWorst: chosen.upstreamWorst, reason: reason, movedFrom: movedFrom)
    }

    /// One eligible resource, its marginal worst case, and how the router sees it.
    struct Evaluated {
        var resource: RoutableResource
        var upstreamWorst: Int64
        var candidate: Routing.Candidate
    }

    /// Whether `resource` (already known to fit the request) can take it now, and how it ranks.
    static func evaluate(
        _ s: inout State, _ r: AdmissionRequest, _ resource: RoutableResource, overflow: Bool, excluding: Set<String>, boundTo: String?
    ) -> Evaluated? {
        let res = resource.resource
        guard (res.kind == .overflow) == overflow, !excluding.contains(resource.id), res.state.isRoutable else { return nil }
        // In place, before reading it: rolling the windows must not copy the runtime's counters.
        let load = s.board.resources[resource.id, default: ResourceRuntime()].load(now: r.now, limits: res.limits)
        let rt = s.board.resources[resource.id] ?? ResourceRuntime()
        if rt.coolingUntil > r.now { return nil }
        if !rt.modelCooling.isEmpty, let until = rt.modelCooling[r.model], until > r.now { return nil }
        let windowHolder = r.windowHolder(res)
        if let until = rt.holderCooling[windowHolder], until > r.now { return nil }
        let windows = rt.windowSets[windowHolder]
        if let windows, r.windowPolicy.refusingUntil(windows, now: r.now) != nil { return nil }
        guard Routing.hasRoom(load, limits: res.limits, tokens: r.shape.worstTokens) else { return nil }
        var held = false
        if res.leaseMode == .exclusive, let holder = rt.leaseHolder, holder != r.holder, !r.leasesShared {
            let idle = rt.inFlight == 0 && r.now - rt.lastActive >= r.leaseIdleMs
            if !idle { return nil }
        } else if res.leaseMode == .exclusive, rt.leaseHolder == r.holder {
            held = true
        }
        let upstreamWorst = res.costBasis.marginalCost(r.shape.worstUsage) ?? r.shape.worstCost(at: resource.price ?? r.listPrice)
        let capKey: BudgetKey = overflow ? .overflowCredit(resource.id) : .resource(resource.id)
        let capSpec = CounterSpec.of(capKey, catalog: r.catalog, tenantId: r.tenant.id, projectId: r.project.id, keyCap: nil)
        if let cap = capSpec.cap {
            let c = s.book.counter(capKey, spec: capSpec, now: r.now)
            if c.spent + c.reserved + upstreamWorst > cap + c.carry { return nil }
        }
        if overflow {
            for p in r.chain {
                let key = BudgetKey.projectOverflow(p.id)
                let spec = CounterSpec.of(key, catalog: r.catalog, tenantId: r.tenant.id, projectId: p.id, keyCap: nil)
                if let cap = spec.cap {
                    let c = s.book.counter(key, spec: spec, now: r.now)
                    if c.spent + c.reserved + upstreamWorst > cap { return nil }
                }
            }
        }
        let shared = res.leaseMode != .passthrough
        let candidate = Routing.Candidate(
            score: Routing.loadScore(load, limits: res.limits), degraded: res.state == .degraded, marginalRank: res.costBasis.marginalRank,
            heldByHolder: held, sessionBound: boundTo == resource.id,
            atThreshold: shared && windows.map { r.windowPolicy.atThreshold($0, now: r.now) } ?? false,
            urgency: shared ? windows.flatMap { r.windowPolicy.urgency($0, weight: res.plan.weight, now: r.now) } : nil)
        return Evaluated(resource: resource, upstreamWorst: upstreamWorst, candidate: candidate)
    }

    /// Looks at every resource a pinned or passthrough request could use, and lets `Routing` choose.
    static func scan(
        _ s: inout State, _ r: AdmissionRequest, overflow: Bool, excluding: Set<String>, boundTo: String?
    ) -> (Evaluated, RouteReason)? {
        var resources: [RoutableResource]
        if let pinned = r.pinnedResourceId {
            resources = r.catalog.resourcesById[pinned].map { [$0] } ?? []
        } else {
            resources = r.catalog.lanes(for: r, overflow: overflow).flatMap(\.members.values)
            resources.sort { ($0.position, $0.id) < ($1.position, $1.id) }
        }
        let eligible = resources.filter(r.fits).compactMap {
            evaluate(&s, r, $0, overflow: overflow, excluding: excluding, boundTo: boundTo)
        }
        guard let choice = Routing.choose(eligible.map(\.candidate), rotation: s.board.rotation) else { return nil }
        return (eligible[choice.index], choice.reason)
    }

    /// Walks the lanes the request fits in selection order and takes the first resource that can
    /// take it: the conversation's resource or the holder's own seat first when eligible. Entries
    /// met on the way are put back; their keys are recomputed at `now` as they are met, and keys
    /// that change with time alone are refreshed when due, so the walk sees current order.
    static func walk(
        _ s: inout State, _ r: AdmissionRequest, overflow: Bool, excluding: Set<String>, boundTo: String?
    ) -> (Evaluated, RouteReason)? {
        let lanes = r.catalog.lanes(for: r, overflow: overflow)
        guard !lanes.isEmpty else { return nil }
        s.board.index.examined = 0
        for lane in lanes { s.board.sync(lane, policy: r.windowPolicy, leaseIdleMs: r.leaseIdleMs, now: r.now) }
        s.board.refreshDue(now: r.now)
        func inLanes(_ id: String) -> RoutableResource? {
            guard let slot = s.board.index.slots[id], lanes.contains(where: { $0.key == slot.lane }) else { return nil }
            return slot.resource
        }
        if let boundTo, let resource = inLanes(boundTo),
            let e = evaluate(&s, r, resource, overflow: overflow, excluding: excluding, boundTo: boundTo),
            !e.candidate.degraded, !e.candidate.atThreshold
        {
            return (e, .session)
        }
        let held = (s.board.index.leases[r.holder] ?? []).compactMap(inLanes).sorted { ($0.position, $0.id) < ($1.position, $1.id) }
        // The holder's own seats: kept while healthy and below the threshold; otherwise they compete
        // with the walk's choice in the routing order, as any eligible resource would.
        var heldAside: [Evaluated] = []
        for resource in held {
            guard let e = evaluate(&s, r, resource, overflow: overflow, excluding: excluding, boundTo: boundTo), e.candidate.heldByHolder else {
                continue
            }
            if !e.candidate.degraded && !e.candidate.atThreshold { return (e, .lease) }
            heldAside.append(e)
        }
        func reason(_ e: Evaluated) -> RouteReason { e.candidate.atThreshold ? .overThreshold : e.candidate.urgency != nil ? .windows : .leastLoaded }
        let walked = walkLanes(&s, r, lanes, overflow: overflow, excluding: excluding, boundTo: boundTo)
        // On a tie the holder keeps its own seat.
        let best = (heldAside + [walked].compactMap { $0 }).min { $0.candidate.order < $1.candidate.order }
        return best.map { ($0, reason($0)) }
    }

    /// Pops candidates from the lanes in order until one is eligible; puts back those it passed.
    static func walkLanes(
        _ s: inout State, _ r: AdmissionRequest, _ lanes: [RoutingLane], overflow: Bool, excluding: Set<String>, boundTo: String?
    ) -> Evaluated? {
        var passed: [(RouteKey, String)] = []
        defer { for (key, lane) in passed { s.board.putBack(key, lane: lane) } }
        while true {
            var next: (key: RouteKey, lane: String)?
            for lane in lanes {
                if let top = s.board.peek(lane.key), next.map({ top < $0.key }) ?? true { next = (top, lane.key) }
            }
            guard let (key, lane) = next else { return nil }
            s.board.pop(lane)
            // Time may have moved it since it was filed: refile it and look again.
            s.board.reindex(key.id, now: r.now)
            guard let slot = s.board.index.slots[key.id], slot.key == key else { continue }
            passed.append((key, lane))
            s.board.index.examined += 1
            guard let e = evaluate(&s, r, slot.resource, overflow: overflow, excluding: excluding, boundTo: boundTo) else { continue }
            return e
        }
    }
}

extension AdmissionEngine {
    /// Keeps the selection index in step with a publication, resource by resource (the catalog
    /// said which changed). Lanes the index does not hold yet are built when first used.
    public func catalogChanged(old: Catalog, new: Catalog, resourceIds: Set<String>) {
        guard !resourceIds.isEmpty else { return }
        state.withLock { s in
            let now = s.board.index.now
            var touched: [String: (old: UInt64?, new: UInt64?)] = [:]
            for id in resourceIds {
                let before = old.resourcesById[id]
                let after = new.resourcesById[id]
                for rr in [before, after] {
                    guard let rr, let key = RoutingLane.key(of: rr.resource), s.board.index.lanes[key] != nil else { continue }
                    touched[key] = (old.lane(key, pool: rr.resource.poolId)?.epoch, new.lane(key, pool: rr.resource.poolId)?.epoch)
                }
            }
            // Which held lanes were current before: those stay current after these changes.
            // A lane the old catalog did not have was not current (the index held a stale one).
            let current = Set(
                touched.filter { key, epochs in epochs.old.map { (s.board.index.lanes[key]?.epoch ?? 0) >= $0 } ?? false }.keys)
            for id in resourceIds { s.board.place(id, old: old.resourcesById[id], new: new.resourcesById[id], now: now) }
            for (key, epochs) in touched {
                guard let newEpoch = epochs.new else {
                    s.board.drop(lane: key)
                    continue
                }
                if current.contains(key), let held = s.board.index.lanes[key]?.epoch { s.board.index.lanes[key]?.epoch = max(held, newEpoch) }
            }
        }
    }
}
