/// How much of each resource's capacity was used in a time range, where it sat idle, and which
/// resources are often at their limits.
public enum Utilization {
    public struct ResourceInfo: Sendable, Equatable {
        public var id: String
        public var poolId: String
        public var kind: ResourceKind
        public var limits: ResourceLimits
        public var createdAt: Int64

        public init(id: String, poolId: String, kind: ResourceKind, limits: ResourceLimits, createdAt: Int64) {
            self.id = id
            self.poolId = poolId
            self.kind = kind
            self.limits = limits
            self.createdAt = createdAt
        }
    }

    public struct Item: Sendable, Equatable {
        public var resourceId: String
        public var requests: Int64 = 0
        public var tokens: Int64 = 0
        /// The highest of requests and tokens against each limit over the range; `nil` without limits.
        public var capacityShare: Double?
        /// Time in each state, from the audit trail.
        public var stateMs: [String: Int64] = [:]
        public var cooldowns: Int = 0
        /// Minutes with at least the resource's RPM of requests.
        public var atLimitMinutes: Int64 = 0
        /// Holder changes (for seats).
        public var leases: Int = 0
        public var idleMs: Int64 = 0
        public var lastUsedAt: Int64?
        public var isIdle = false

        public init(resourceId: String) { self.resourceId = resourceId }
    }

    public struct PoolTotal: Sendable, Equatable {
        public var poolId: String
        public var resources: Int = 0
        public var requests: Int64 = 0
        public var tokens: Int64 = 0
        /// The mean capacity share of its resources that have limits.
        public var capacityShare: Double?

        public init(poolId: String) { self.poolId = poolId }
    }

    public static func compute(
        resources: [ResourceInfo], uses: [ResourceUse], transitions: [StateTransition], minutes: [MinuteCount], lastUse: [String: Int64],
        from: Int64, to: Int64, now: Int64, idleDays: Int64
    ) -> (items: [Item], pools: [PoolTotal]) {
        let usesBy = Dictionary(grouping: uses, by: \.resourceId)
        let transitionsBy = Dictionary(grouping: transitions, by: \.resourceId)
        let minutesBy = Dictionary(grouping: minutes, by: \.resourceId)
        let window = Double(to - from)
        var items: [Item] = []
        var pools: [String: (PoolTotal, [Double])] = [:]
        for r in resources {
            var item = Item(resourceId: r.id)
            let rows = (usesBy[r.id] ?? []).sorted { $0.startedAt < $1.startedAt }
            item.requests = Int64(rows.count)
            item.tokens = rows.reduce(0) { $0 + $1.tokens }
            var shares: [Double] = []
            let minutesInRange = window / 60_000
            if let rpm = r.limits.rpm { shares.append(Double(item.requests) / (Double(rpm) * minutesInRange)) }
            if let tpm = r.limits.tpm { shares.append(Double(item.tokens) / (Double(tpm) * minutesInRange)) }
            for w in r.limits.windows {
                let windows = window / Double(w.windowSeconds * 1000)
                if let n = w.requests { shares.append(Double(item.requests) / (Double(n) * windows)) }
                if let n = w.tokens { shares.append(Double(item.tokens) / (Double(n) * windows)) }
            }
            item.capacityShare = shares.max().map { ($0 * 10_000).rounded() / 10_000 }
            var current = "pending"
            var since = r.createdAt
            for t in transitionsBy[r.id] ?? [] {
                let start = max(since, from)
                let end = min(t.at, to)
                if end > start { item.stateMs[current, default: 0] += end - start }
                current = t.to
                since = t.at
                if t.to == "cooling" && t.at >= from && t.at < to { item.cooldowns += 1 }
            }
            if to > max(since, from) { item.stateMs[current, default: 0] += to - max(since, from) }
            var lastHolder: String?
            var busyMs: Int64 = 0
            var coveredUntil = from
            for row in rows {
                if row.holder != lastHolder {
                    item.leases += 1
                    lastHolder = row.holder
                }
                let s = max(row.startedAt, coveredUntil)
                let e = min(max(row.finishedAt, row.startedAt), to)
                if e > s { busyMs += e - s }
                coveredUntil = max(coveredUntil, e)
            }
            item.idleMs = max(0, to - from - busyMs)
            if let rpm = r.limits.rpm { item.atLimitMinutes = Int64((minutesBy[r.id] ?? []).filter { $0.requests >= rpm }.count) }
            item.lastUsedAt = lastUse[r.id]
            item.isIdle = (item.lastUsedAt ?? 0) < now - idleDays * Forecast.dayMs
            items.append(item)
            var pool = pools[r.poolId] ?? (PoolTotal(poolId: r.poolId), [])
            pool.0.resources += 1
            pool.0.requests += item.requests
            pool.0.tokens += item.tokens
            if let share = shares.max() { pool.1.append(share) }
            pools[r.poolId] = pool
        }
        let totals = pools.values.map { entry -> PoolTotal in
            var t = entry.0
            if !entry.1.isEmpty { t.capacityShare = (entry.1.reduce(0, +) / Double(entry.1.count) * 10_000).rounded() / 10_000 }
            return t
        }
        return (items, totals)
    }
}
