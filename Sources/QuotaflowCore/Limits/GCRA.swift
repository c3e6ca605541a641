/// Generic cell rate algorithm: an exact rate limit of `limit` units per `periodMs`, allowing a burst
/// of the whole limit, in O(1) state (the theoretical arrival time).
public struct GCRA: Sendable, Equatable {
    /// Theoretical arrival time in milliseconds (fractional, so small rates stay exact enough).
    public private(set) var tat: Double = 0

    public init() {}

    /// Takes `cost` units at `now`. Returns `nil` when allowed, otherwise the milliseconds to wait.
    public mutating func attempt(now: Int64, limit: Int64, periodMs: Int64, cost: Int64 = 1) -> Int64? {
        guard limit > 0 else { return periodMs }
        let t = Double(periodMs) / Double(limit)
        let nowD = Double(now)
        let newTat = max(tat, nowD) + t * Double(max(0, cost))
        let allowAt = newTat - Double(periodMs)
        if nowD < allowAt { return Int64((allowAt - nowD).rounded(.up)) }
        tat = newTat
        return nil
    }

    /// Takes `cost` units even when over the limit (audit mode records but does not refuse).
    public mutating func force(now: Int64, limit: Int64, periodMs: Int64, cost: Int64 = 1) {
        guard limit > 0 else { return }
        tat = max(tat, Double(now)) + Double(periodMs) / Double(limit) * Double(max(0, cost))
    }

    /// Gives back units taken earlier (for example an over-estimate of tokens).
    public mutating func refund(limit: Int64, periodMs: Int64, cost: Int64) {
        guard limit > 0, cost > 0 else { return }
        tat -= Double(periodMs) / Double(limit) * Double(cost)
    }

    /// Units still available at `now` without waiting.
    public func remaining(now: Int64, limit: Int64, periodMs: Int64) -> Int64 {
        guard limit > 0 else { return 0 }
        let t = Double(periodMs) / Double(limit)
        let used = max(0, tat - Double(now)) / t
        return max(0, limit - Int64(used.rounded(.up)))
    }

    /// Whether the state no longer matters (no debt left) and can be dropped.
    public func isIdle(now: Int64) -> Bool { tat <= Double(now) }
}

/// Requests or tokens over the last `buckets` seconds, in one-second buckets with a running total.
public struct SlidingCounter: Sendable {
    var counts: [Int64]
    var lastSecond: Int64 = 0
    public private(set) var runningTotal: Int64 = 0

    public init(buckets: Int = 60) { counts = Array(repeating: 0, count: buckets) }

    mutating func advance(to second: Int64) {
        let n = Int64(counts.count)
        if second - lastSecond >= n {
            for i in 0..<counts.count { counts[i] = 0 }
            runningTotal = 0
        } else if second > lastSecond {
            var s = lastSecond + 1
            while s <= second {
                let i = Int(s % n)
                runningTotal -= counts[i]
                counts[i] = 0
                s += 1
            }
        }
        if second > lastSecond { lastSecond = second }
    }

    public mutating func add(_ amount: Int64, nowMs: Int64) {
        let second = nowMs / 1000
        advance(to: second)
        let i = Int(second % Int64(counts.count))
        counts[i] += amount
        runningTotal += amount
    }

    public mutating func total(nowMs: Int64) -> Int64 {
        advance(to: nowMs / 1000)
        return runningTotal
    }

    /// The earliest time (ms) at which the total drops to `limit - amount` or below, as old
    /// seconds fall out of the window; `nowMs` when it already has. A bucket counted at second
    /// `s` leaves the window when the clock reaches second `s + buckets`.
    public mutating func roomAt(_ amount: Int64, limit: Int64, nowMs: Int64) -> Int64 {
        let now = nowMs / 1000
        advance(to: now)
        var total = runningTotal
        if total + amount <= limit { return nowMs }
        let n = Int64(counts.count)
        var s = now - n + 1
        while s <= now {
            total -= counts[Int(((s % n) + n) % n)]
            if total + amount <= limit { return (s + n) * 1000 }
            s += 1
        }
        return (now + n) * 1000
    }
}
