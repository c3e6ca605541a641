import HashTreeCollections
import HeapModule

/// Where a resource stands in selection order. Smaller is preferred: available before a seat leased
/// to someone else and before a cooling or refusing one (those two are ineligible until time frees
/// them; they sort last so a walk rarely meets them); then `Routing`'s order (below its window
/// threshold, healthy, by urgency, by load, by marginal cost); ties go to the resource taken least
/// recently, then to the one added first.
struct RouteKey: Comparable, Sendable {
    var blocked: Int8
    var order: Routing.Order
    var lastTaken: UInt64
    var position: Int64
    var id: String

    static func < (a: Self, b: Self) -> Bool {
        if a.blocked != b.blocked { return a.blocked < b.blocked }
        if a.order != b.order { return a.order < b.order }
        return (a.lastTaken, a.position, a.id) < (b.lastTaken, b.position, b.id)
    }
}

/// A resource's place in its lane: the catalog object, its current key, and when time alone may
/// change that key (a cooldown or lease ends, a rate-limit second or usage window rolls, window
/// urgency drifts).
struct LaneSlot: Sendable {
    var lane: String
    var resource: RoutableResource
    var key: RouteKey
    var dueAt: Int64?
}

/// One lane's candidates in selection order. Entries whose key is no longer the slot's are stale
/// and skipped when met; the heap is rebuilt when they outnumber the live ones.
struct LaneHeap: Sendable {
    var heap = Heap<RouteKey>()
    var members: Set<String> = []
    var epoch: UInt64 = 0
    /// The settings its keys are computed with: those of the tenant's requests (a lane is one tenant's).
    var policy = WindowPolicy()
    var leaseIdleMs: Int64 = 300_000
}

/// A moment at which a resource's key must be recomputed.
struct DueEntry: Comparable, Sendable {
    var at: Int64
    var id: String
    static func < (a: Self, b: Self) -> Bool { (a.at, a.id) < (b.at, b.id) }
}

/// The selection index: every lane a request has used, ordered, and kept in step by `reindex`
/// whenever a resource's load, lease, cooldown or windows change, and by `place` when the catalog
/// changes. A request pays for the lanes it fits and the few candidates it looks at, not the pool.
struct SelectionIndex: Sendable {
    var lanes: [String: LaneHeap] = [:]
    var slots: [String: LaneSlot] = [:]
    var due = Heap<DueEntry>()
    /// Exclusive seats by the holder that leases them, so a holder's own seat is found at once.
    var leases: [String: Set<String>] = [:]
    /// Counts takes: a resource's `lastTaken`.
    var takes: UInt64 = 0
    /// Candidates the last walk looked at (tests read it: the walk must not grow with the pool).
    var examined = 0
    /// The latest time the board was told, for changes that come without one (a cooldown set).
    var now: Int64 = 0
}

extension ResourceBoard {
    /// Brings a lane up to the catalog's: built on first use, rebuilt when the catalog changed it
    /// without `place` being told (tests, or a publication racing this request).
    mutating func sync(_ lane: RoutingLane, policy: WindowPolicy, leaseIdleMs: Int64, now: Int64) {
        if var have = index.lanes[lane.key], have.epoch >= lane.epoch {
            if have.policy != policy || have.leaseIdleMs != leaseIdleMs {
                have.policy = policy
                have.leaseIdleMs = leaseIdleMs
                index.lanes[lane.key] = have
            }
            return
        }
        var heap = LaneHeap()
        heap.epoch = lane.epoch
        heap.policy = policy
        heap.leaseIdleMs = leaseIdleMs
        for id in index.lanes[lane.key]?.members ?? [] where lane.members[id] == nil && index.slots[id]?.lane == lane.key {
            index.slots[id] = nil
        }
        index.lanes[lane.key] = heap
        var keys: [RouteKey] = []
        keys.reserveCapacity(lane.members.count)
        for (id, rr) in lane.members {
            // A resource another held lane filed at least as recently stays there (this request may
            // carry an older catalog than the one that moved it).
            if let other = index.slots[id]?.lane, other != lane.key, let held = index.lanes[other], held.epoch >= lane.epoch { continue }
            heap.members.insert(id)
            keys.append(refreshSlot(id, rr, lane: lane.key, now: now))
        }
        heap.heap = Heap(keys)
        index.lanes[lane.key] = heap
    }

    /// The catalog changed a resource: moves it between the lanes the index holds (their epochs are
    /// the caller's to advance, once for the whole publication).
    mutating func place(_ id: String, old: RoutableResource?, new: RoutableResource?, now: Int64) {
        let oldKey = old.flatMap { RoutingLane.key(of: $0.resource) }
        let newKey = new.flatMap { RoutingLane.key(of: $0.resource) }
        if let oldKey, oldKey != newKey {
            index.lanes[oldKey]?.members.remove(id)
            if index.slots[id]?.lane == oldKey { index.slots[id] = nil }
        }
        guard let new, let newKey, index.lanes[newKey] != nil else { return }
        index.lanes[newKey]?.members.insert(id)
        let key = refreshSlot(id, new, lane: newKey, now: now)
        insert(key, lane: newKey)
    }

    /// Forgets a lane the catalog no longer has.
    mutating func drop(lane key: String) {
        for id in index.lanes[key]?.members ?? [] where index.slots[id]?.lane == key { index.slots[id] = nil }
        index.lanes[key] = nil
    }

    /// Computes a resource's key at `now` into its slot (creating it); schedules its next refresh.
    @discardableResult
    mutating func refreshSlot(_ id: String, _ rr: RoutableResource, lane: String, now: Int64) -> RouteKey {
        let settings = index.lanes[lane]
        // In place: a copy out and back would copy the runtime's counters on every refile.
        let (key, dueAt) = resources[id, default: ResourceRuntime()].routeKey(
            rr, policy: settings?.policy ?? WindowPolicy(), leaseIdleMs: settings?.leaseIdleMs ?? 300_000, now: now)
        let previous = index.slots[id]
        index.slots[id] = LaneSlot(lane: lane, resource: rr, key: key, dueAt: dueAt)
        if let dueAt, previous?.dueAt != dueAt { index.due.insert(DueEntry(at: dueAt, id: id)) }
        return key
    }

    /// Recomputes a resource's key after its load, lease, cooldown or windows changed, and files it
    /// under the new key. Resources outside every lane the index holds cost nothing.
    mutating func reindex(_ id: String, now: Int64) {
        guard let slot = index.slots[id], index.lanes[slot.lane] != nil else { return }
        let key = refreshSlot(id, slot.resource, lane: slot.lane, now: now)
        if key != slot.key { insert(key, lane: slot.lane) }
    }

    private mutating func insert(_ key: RouteKey, lane: String) {
        guard var l = index.lanes[lane] else { return }
        index.lanes[lane] = nil  // unique: the heap grows in place
        l.heap.insert(key)
        if l.heap.count > 2 * l.members.count + 32 {
            l.heap = Heap(l.members.compactMap { index.slots[$0]?.key })
        }
        index.lanes[lane] = l
    }

    /// Refreshes every key whose time has come (cooldowns ended, windows rolled).
    mutating func refreshDue(now: Int64) {
        index.now = max(index.now, now)
        while let top = index.due.min, top.at <= now {
            _ = index.due.popMin()
            guard var slot = index.slots[top.id], slot.dueAt == top.at else { continue }
            slot.dueAt = nil
            index.slots[top.id] = slot
            reindex(top.id, now: now)
        }
    }

    /// The live entry at the top of a lane, dropping stale ones; `nil` when the lane is exhausted.
    mutating func peek(_ lane: String) -> RouteKey? {
        while let top = index.lanes[lane]?.heap.min {
            if index.slots[top.id]?.key == top, index.slots[top.id]?.lane == lane { return top }
            index.lanes[lane]?.heap.removeMin()
        }
        return nil
    }

    mutating func pop(_ lane: String) { index.lanes[lane]?.heap.removeMin() }

    /// Puts back an entry a walk looked at and passed over, if it is still current.
    mutating func putBack(_ key: RouteKey, lane: String) {
        if index.slots[key.id]?.key == key { index.lanes[lane]?.heap.insert(key) }
    }
}

extension ResourceRuntime {
    /// This resource's selection key at `now`, and when time alone may change it.
    mutating func routeKey(_ rr: RoutableResource, policy: WindowPolicy, leaseIdleMs: Int64, now: Int64) -> (RouteKey, Int64?) {
        let res = rr.resource
        let load = load(now: now, limits: res.limits)
        let windows = windowSets[""]
        var due: Int64?
        func at(_ t: Int64) { due = min(due ?? t, t) }
        var blocked: Int8 = 0
        if coolingUntil > now {
            blocked = 2
            at(coolingUntil)
        }
        if let windows, let until = policy.refusingUntil(windows, now: now) {
            blocked = 2
            at(until)
        }
        if blocked == 0, res.leaseMode == .exclusive, leaseHolder != nil, !(inFlight == 0 && now - lastActive >= leaseIdleMs) {
            blocked = 1
            if inFlight == 0 { at(lastActive + leaseIdleMs) }
        }
        if windows != nil { at(now + 1000) }
        let limits = res.limits
        if (limits.rpm != nil && load.requestsLastMinute > 0) || (limits.tpm != nil && load.tokensLastMinute > 0)
            || load.windowRequests.contains(where: { $0 > 0 }) || load.windowTokens.contains(where: { $0 > 0 })
        {
            at((now / 1000 + 1) * 1000)
        }
        let order = Routing.Order(
            atThreshold: windows.map { policy.atThreshold($0, now: now) } ?? false, degraded: res.state == .degraded,
            urgency: windows.flatMap { policy.urgency($0, weight: res.plan.weight, now: now) }, score: Routing.loadScore(load, limits: limits),
            marginalRank: res.costBasis.marginalRank)
        return (RouteKey(blocked: blocked, order: order, lastTaken: lastTaken, position: rr.position, id: rr.id), due)
    }
}
