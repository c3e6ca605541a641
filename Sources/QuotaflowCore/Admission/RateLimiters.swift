/// One rate limit a request must pass: what it counts, its limit per minute, and the cost.
public struct RateCheck: Sendable {
    public let key: LimiterKey
    public let limit: Int64
    public let cost: Int64
    /// How the limit is named in a refusal ("the request rate limit of this key (60/min)").
    public let what: String

    public init(key: LimiterKey, limit: Int64, cost: Int64, what: String) {
        self.key = key
        self.limit = limit
        self.cost = cost
        self.what = what
    }
}

/// Exact per-minute limiters (GCRA) by key, project, end user and project tokens. Not thread-safe
/// by itself; the admission engine holds it under its one lock.
public struct RateLimiters: Sendable {
    static let periodMs: Int64 = 60_000
    var limiters: [LimiterKey: GCRA] = [:]

    public init() {}

    /// Takes one unit (or `cost`) from every limiter, or none. In audit enforcement takes them all
    /// and reports what would have refused. Returns a denial, or the audit flags.
    mutating func take(_ checks: [RateCheck], now: Int64, enforce: Bool) -> Result<[LedgerFlag], Denial> {
        var taken: [RateCheck] = []
        func giveBack() { for t in taken { limiters[t.key]?.refund(limit: t.limit, periodMs: Self.periodMs, cost: t.cost) } }
        for check in checks {
            var g = limiters[check.key] ?? GCRA()
            if check.cost > check.limit && enforce {
                giveBack()
                return .failure(Denial(.requestTooLarge, "the request needs about \(check.cost) tokens, more than \(check.what) allows"))
            }
            if let wait = g.attempt(now: now, limit: check.limit, periodMs: Self.periodMs, cost: check.cost) {
                let seconds = (wait + 999) / 1000
                if enforce {
                    giveBack()
                    return .failure(Denial(.rateLimited, "\(check.what) is reached; retry after \(max(1, seconds)) s", retryAfterSeconds: seconds))
                }
                g.force(now: now, limit: check.limit, periodMs: Self.periodMs, cost: check.cost)
                limiters[check.key] = g
                return .success([.wouldRefuse(.rateLimited)])
            }
            limiters[check.key] = g
            taken.append(check)
        }
        return .success([])
    }

    mutating func refund(_ key: LimiterKey, limit: Int64, cost: Int64) {
        guard cost > 0 else { return }
        limiters[key]?.refund(limit: limit, periodMs: Self.periodMs, cost: cost)
    }

    func remaining(_ key: LimiterKey, limit: Int64, now: Int64) -> Int64 {
        (limiters[key] ?? GCRA()).remaining(now: now, limit: limit, periodMs: Self.periodMs)
    }

    /// Drops limiters with no debt left.
    mutating func prune(now: Int64) { limiters = limiters.filter { !$0.value.isIdle(now: now) } }
}
