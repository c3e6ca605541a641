/// What a resource is carrying right now, as the router sees it.
public struct ResourceLoad: Sendable, Equatable {
    public var inFlight: Int64 = 0
    public var requestsLastMinute: Int64 = 0
    public var tokensLastMinute: Int64 = 0
    /// Used requests and tokens in each usage window, in the order of `ResourceLimits.windows`.
    public var windowRequests: [Int64] = []
    public var windowTokens: [Int64] = []

    public init(
        inFlight: Int64 = 0, requestsLastMinute: Int64 = 0, tokensLastMinute: Int64 = 0, windowRequests: [Int64] = [],
        windowTokens: [Int64] = []
    ) {
        self.inFlight = inFlight
        self.requestsLastMinute = requestsLastMinute
        self.tokensLastMinute = tokensLastMinute
        self.windowRequests = windowRequests
        self.windowTokens = windowTokens
    }
}

public enum Routing {
    /// The load score: the highest of a resource's utilizations (in-flight over concurrency, and
    /// requests and tokens in the current window over their limits). 0 when it has no limits.
    public static func loadScore(_ load: ResourceLoad, limits: ResourceLimits) -> Double {
        var score = 0.0
        func use(_ used: Int64, _ limit: Int64?) {
            if let limit, limit > 0 { score = max(score, Double(used) / Double(limit)) }
        }
        use(load.inFlight, limits.maxConcurrency)
        use(load.requestsLastMinute, limits.rpm)
        use(load.tokensLastMinute, limits.tpm)
        for (i, w) in limits.windows.enumerated() {
            use(i < load.windowRequests.count ? load.windowRequests[i] : 0, w.requests)
            use(i < load.windowTokens.count ? load.windowTokens[i] : 0, w.tokens)
        }
        return score
    }

    /// Whether one more request of about `tokens` tokens fits under every limit.
    public static func hasRoom(_ load: ResourceLoad, limits: ResourceLimits, tokens: Int64) -> Bool {
        if let c = limits.maxConcurrency, load.inFlight >= c { return false }
        if let r = limits.rpm, load.requestsLastMinute >= r { return false }
        if let t = limits.tpm, load.tokensLastMinute > 0, load.tokensLastMinute + tokens > t { return false }
        for (i, w) in limits.windows.enumerated() {
            if let r = w.requests, (i < load.windowRequests.count ? load.windowRequests[i] : 0) >= r { return false }
            if let t = w.tokens {
                let used = i < load.windowTokens.count ? load.windowTokens[i] : 0
                if used > 0, used + tokens > t { return false }
            }
        }
        return true
    }

    /// One eligible resource, described for the choice.
    public struct Candidate: Sendable, Equatable {
        public var score: Double
        /// `degraded` resources are routable but chosen only after healthy ones.
        public var degraded: Bool
        /// Lower is cheaper at the margin: a flat-fee seat (0) before a metered key.
        public var marginalRank: Int64
        /// The request's holder already leases this seat; holders keep their seat while active.
        public var heldByHolder: Bool
        /// The request's conversation is bound to this resource (its prompt cache is warm there).
        public var sessionBound: Bool
        /// The short window is at the threshold: no new holder or conversation.
        public var atThreshold: Bool
        /// How urgently its capacity should be used before it resets unused; `nil` without window data.
        public var urgency: Double?

        /// Where it stands in the routing order.
        public var order: Order {
            Order(atThreshold: atThreshold, degraded: degraded, urgency: urgency, score: score, marginalRank: marginalRank)
        }

        public init(
            score: Double, degraded: Bool = false, marginalRank: Int64 = 0, heldByHolder: Bool = false, sessionBound: Bool = false,
            atThreshold: Bool = false, urgency: Double? = nil
        ) {
            self.score = score
            self.degraded = degraded
            self.marginalRank = marginalRank
            self.heldByHolder = heldByHolder
            self.sessionBound = sessionBound
            self.atThreshold = atThreshold
            self.urgency = urgency
        }
    }

    /// The order of preference among eligible resources: below the window threshold first, healthy
    /// before degraded, those with window data by urgency (higher first; no data after any data),
    /// then the lowest load score, then the lower marginal cost. Scores are compared to 1e-9, so
    /// rounding noise does not split ties.
    public struct Order: Comparable, Sendable {
        let rank: (Int8, Int8, Int8, Double, Double, Int64)

        public init(atThreshold: Bool, degraded: Bool, urgency: Double?, score: Double, marginalRank: Int64) {
            let rounded = { (x: Double) in (x * 1e9).rounded() / 1e9 }
            rank = (atThreshold ? 1 : 0, degraded ? 1 : 0, urgency == nil ? 1 : 0, -rounded(urgency ?? 0), rounded(score), marginalRank)
        }

        public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
        public static func == (a: Self, b: Self) -> Bool { a.rank == b.rank }
    }

    /// A choice and why it was made.
    public struct Choice: Sendable, Equatable {
        public var index: Int
        public var reason: RouteReason
    }

    /// Picks among eligible candidates. A healthy candidate below its window threshold that the
    /// conversation is bound to, then one the holder leases, keeps the request. Otherwise candidates
    /// at their threshold are set aside unless nothing else is left (availability beats the
    /// threshold); healthy before degraded; those with window data by urgency (capacity that would
    /// reset unused first); the rest by the lowest load score; ties to the lower marginal cost, then
    /// round-robin by `rotation`.
    public static func choose(_ candidates: [Candidate], rotation: UInt64) -> Choice? {
        guard !candidates.isEmpty else { return nil }
        if let bound = candidates.indices.first(where: { candidates[$0].sessionBound && !candidates[$0].degraded && !candidates[$0].atThreshold }) {
            return Choice(index: bound, reason: .session)
        }
        if let held = candidates.indices.first(where: { candidates[$0].heldByHolder && !candidates[$0].degraded && !candidates[$0].atThreshold }) {
            return Choice(index: held, reason: .lease)
        }
        var pool = candidates.indices.filter { !candidates[$0].atThreshold }
        let overThreshold = pool.isEmpty
        if overThreshold { pool = Array(candidates.indices) }
        // Within `pool` every candidate is on the same side of the threshold, so `order` compares the rest.
        func key(_ c: Candidate) -> Order { c.order }
        var best = key(candidates[pool[0]])
        var tied: [Int] = [pool[0]]
        for i in pool.dropFirst() {
            let k = key(candidates[i])
            if k < best {
                best = k
                tied = [i]
            } else if k == best {
                tied.append(i)
            }
        }
        let index = tied[Int(rotation % UInt64(tied.count))]
        let reason: RouteReason = overThreshold ? .overThreshold : candidates[index].urgency != nil ? .windows : .leastLoaded
        return Choice(index: index, reason: reason)
    }
}

/// Why the router chose a resource: on the ledger row and in the routing metrics.
public enum RouteReason: String, Sendable, CaseIterable {
    /// The request continues a stored response held there.
    case pinned
    /// The conversation was bound there.
    case session
    /// The conversation was bound elsewhere, and that resource was no longer eligible.
    case sessionMoved = "session_moved"
    /// The holder leases that exclusive seat.
    case lease
    /// Reset-aware: its capacity was the most likely to reset unused.
    case windows
    /// No window data: the least loaded.
    case leastLoaded = "least_loaded"
    /// Every eligible resource was at its window threshold; the least used of them.
    case overThreshold = "over_threshold"
    /// A passthrough request: the holder's own subscription.
    case passthrough
}
