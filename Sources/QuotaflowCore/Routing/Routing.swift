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

        public init(score: Double, degraded: Bool = false, marginalRank: Int64 = 0, heldByHolder: Bool = false) {
            self.score = score
            self.degraded = degraded
            self.marginalRank = marginalRank
            self.heldByHolder = heldByHolder
        }
    }

    /// Picks among eligible candidates: the holder's own seat first; then healthy before degraded;
    /// then the lowest load score; ties to the lower marginal cost, then round-robin by `rotation`.
    public static func choose(_ candidates: [Candidate], rotation: UInt64) -> Int? {
        guard !candidates.isEmpty else { return nil }
        if let held = candidates.indices.first(where: { candidates[$0].heldByHolder && !candidates[$0].degraded }) { return held }
        func key(_ c: Candidate) -> (Int, Double, Int64) { (c.degraded ? 1 : 0, (c.score * 1e9).rounded() / 1e9, c.marginalRank) }
        var best = key(candidates[0])
        var tied: [Int] = [0]
        for i in 1..<candidates.count {
            let k = key(candidates[i])
            if k < best {
                best = k
                tied = [i]
            } else if k == best {
                tied.append(i)
            }
        }
        return tied[Int(rotation % UInt64(tied.count))]
    }
}
