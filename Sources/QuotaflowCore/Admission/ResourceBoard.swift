/// What one resource is carrying right now: in-flight requests, recent requests and tokens, usage
/// windows, its lease, cooldowns.
public struct ResourceRuntime: Sendable {
    struct WindowUse: Sendable {
        var start: Int64
        var requests: Int64 = 0
        var tokens: Int64 = 0
    }

    public internal(set) var inFlight: Int64 = 0
    var requests = SlidingCounter()
    var tokens = SlidingCounter()
    var windows: [WindowUse] = []
    public internal(set) var leaseHolder: String?
    public internal(set) var lastActive: Int64 = 0
    public internal(set) var leaseGrants: Int64 = 0
    public internal(set) var coolingUntil: Int64 = 0
    public internal(set) var routed: Int64 = 0
    /// When it was last taken, in takes counted across the board (ties go to the least recent).
    var lastTaken: UInt64 = 0
    /// Models this resource answered 404 for, cooled until the time given.
    public internal(set) var modelCooling: [String: Int64] = [:]
    /// The usage windows its credential reported, by holder: `""` for the resource's own credential,
    /// the key id for a passthrough holder's own subscription.
    public internal(set) var windowSets: [String: WindowSet] = [:]
    /// Passthrough holders whose own subscription is limited, until when.
    public internal(set) var holderCooling: [String: Int64] = [:]

    public init() {}

    /// The load as the router sees it at `now`.
    public mutating func load(now: Int64, limits: ResourceLimits) -> ResourceLoad {
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

    /// The earliest moment this resource has room for one more request of `tokens` tokens for
    /// `holder`, from time alone (cooldowns, rate-limit slots, windows, an idle lease).
    mutating func roomAt(_ res: Resource, model: String, holder: String, tokens: Int64, leaseIdleMs: Int64, now: Int64) -> Int64 {
        rollWindows(now: now, limits: res.limits)
        var at = max(now, coolingUntil, res.state == .cooling ? (res.coolingUntil ?? now) : now)
        if let until = modelCooling[model] { at = max(at, until) }
        let windowHolder = res.leaseMode == .passthrough ? Self.keyPart(holder) : ""
        if let until = holderCooling[windowHolder] { at = max(at, until) }
        if let set = windowSets[windowHolder], let until = WindowPolicy().refusingUntil(set, now: now) { at = max(at, until) }
        let limits = res.limits
        if let c = limits.maxConcurrency, inFlight >= c { at = max(at, now + 1000) }
        if let rpm = limits.rpm { at = max(at, requests.roomAt(1, limit: rpm, nowMs: now)) }
        if let tpm = limits.tpm, tokens > 0, self.tokens.total(nowMs: now) > 0 {
            at = max(at, self.tokens.roomAt(min(tokens, tpm), limit: tpm, nowMs: now))
        }
        for (i, w) in limits.windows.enumerated() where i < windows.count {
            let full =
                (w.requests.map { windows[i].requests >= $0 } ?? false)
                || (w.tokens.map { windows[i].tokens > 0 && windows[i].tokens + tokens > $0 } ?? false)
            if full { at = max(at, windows[i].start + w.windowSeconds * 1000) }
        }
        if res.leaseMode == .exclusive, let leaseHolder, leaseHolder != holder {
            at = max(at, inFlight > 0 ? now + 1000 : lastActive + leaseIdleMs)
        }
        return at
    }
}

extension ResourceRuntime {
    /// The key part of a holder (`key` or `key/user`): passthrough windows belong to the key's holder.
    static func keyPart(_ holder: String) -> String {
        holder.firstIndex(of: "/").map { String(holder[..<$0]) } ?? holder
    }
}

/// The runtime state of every resource. Not thread-safe by itself; the admission engine holds it
/// under its one lock.
public struct ResourceBoard: Sendable {
    public internal(set) var resources: [String: ResourceRuntime] = [:]
    /// Round-robin position for ties among passthrough candidates.
    var rotation: UInt64 = 0
    /// Shared resources in selection order.
    var index = SelectionIndex()

    public init() {}

    /// A request starts on `resource`: a slot, a request and its worst-case tokens, and the lease.
    mutating func take(_ resource: RoutableResource, request r: AdmissionRequest) {
        var rt = resources[resource.id] ?? ResourceRuntime()
        rt.rollWindows(now: r.now, limits: resource.resource.limits)
        rt.inFlight += 1
        rt.routed += 1
        rt.requests.add(1, nowMs: r.now)
        rt.tokens.add(r.shape.worstTokens, nowMs: r.now)
        for i in rt.windows.indices {
            rt.windows[i].requests += 1
            rt.windows[i].tokens += r.shape.worstTokens
        }
        if resource.resource.leaseMode == .exclusive, rt.leaseHolder != r.holder {
            if let previous = rt.leaseHolder {
                index.leases[previous]?.remove(resource.id)
                if index.leases[previous]?.isEmpty == true { index.leases[previous] = nil }
            }
            rt.leaseHolder = r.holder
            rt.leaseGrants += 1
            index.leases[r.holder, default: []].insert(resource.id)
        }
        rt.lastActive = r.now
        index.takes &+= 1
        rt.lastTaken = index.takes
        resources[resource.id] = rt
        rotation &+= 1
        reindex(resource.id, now: r.now)
        refreshDue(now: r.now)
    }

    /// Gives an exclusive seat back to `previous` (a fleet refused the lease `holder` was given here).
    mutating func unlease(_ resourceId: String, holder: String, previous: String?, now: Int64) {
        guard var rt = resources[resourceId], rt.leaseHolder == holder, previous != holder else { return }
        index.leases[holder]?.remove(resourceId)
        if index.leases[holder]?.isEmpty == true { index.leases[holder] = nil }
        rt.leaseHolder = previous
        rt.leaseGrants -= 1
        if let previous { index.leases[previous, default: []].insert(resourceId) }
        resources[resourceId] = rt
        reindex(resourceId, now: now)
    }

    /// The request left the resource: frees its slot and corrects the token estimate.
    mutating func release(_ resourceId: String, estimatedTokens: Int64, actualTokens: Int64?, now: Int64) {
        guard var rt = resources[resourceId] else { return }
        rt.inFlight = max(0, rt.inFlight - 1)
        if let actualTokens {
            let delta = actualTokens - estimatedTokens
            rt.tokens.add(delta, nowMs: now)
            for i in rt.windows.indices { rt.windows[i].tokens += delta }
        }
        rt.lastActive = now
        resources[resourceId] = rt
        reindex(resourceId, now: now)
        refreshDue(now: now)
    }

    /// Takes a resource out of routing until `until`; `true` if this extended its cooldown.
    mutating func cool(_ resourceId: String, until: Int64) -> Bool {
        var rt = resources[resourceId] ?? ResourceRuntime()
        guard until > rt.coolingUntil else { return false }
        rt.coolingUntil = until
        resources[resourceId] = rt
        reindex(resourceId, now: index.now)
        return true
    }

    /// Takes one model off a resource until `until`; `true` if this extended it. Entries that expired
    /// before `forgetBefore` are dropped.
    mutating func coolModel(_ resourceId: String, model: String, until: Int64, forgetBefore: Int64) -> Bool {
        var rt = resources[resourceId] ?? ResourceRuntime()
        guard until > rt.modelCooling[model] ?? 0 else { return false }
        rt.modelCooling = rt.modelCooling.filter { $0.value > forgetBefore }
        rt.modelCooling[model] = until
        resources[resourceId] = rt
        return true
    }

    /// Takes in what an answer said about a credential's windows; returns the merged set.
    mutating func observe(_ resourceId: String, holder: String, report: WindowReport, now: Int64) -> WindowSet {
        var rt = resources[resourceId] ?? ResourceRuntime()
        var set = rt.windowSets[holder] ?? WindowSet()
        set.merge(report, now: now)
        rt.windowSets[holder] = set
        resources[resourceId] = rt
        if holder.isEmpty { reindex(resourceId, now: max(index.now, now)) }
        return set
    }

    /// Cools one passthrough holder's subscription on a resource; `true` if this extended it.
    mutating func coolHolder(_ resourceId: String, holder: String, until: Int64, now: Int64) -> Bool {
        var rt = resources[resourceId] ?? ResourceRuntime()
        guard until > rt.holderCooling[holder] ?? 0 else { return false }
        rt.holderCooling = rt.holderCooling.filter { $0.value > now }
        rt.holderCooling[holder] = until
        resources[resourceId] = rt
        return true
    }

    /// A probe passed: the resource and the models its list claims are routable again.
    mutating func clearCooling(_ resourceId: String) {
        resources[resourceId]?.coolingUntil = 0
        resources[resourceId]?.modelCooling = [:]
        reindex(resourceId, now: index.now)
    }
}
