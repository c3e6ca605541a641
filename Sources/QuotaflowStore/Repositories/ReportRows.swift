import QuotaflowCore

extension UsageDimension {
    func sql(_ dialect: SQLDialect) -> String {
        switch self {
        case .project: return "project_id"
        case .key: return "COALESCE(seat_id, key_id)"
        case .holder:
            return
                "CASE WHEN seat_id IS NOT NULL THEN 'seat:' || seat_id WHEN user_digest IS NOT NULL THEN 'user:' || user_digest ELSE 'key:' || key_id END"
        case .provider: return "provider"
        case .model: return "COALESCE(model_served, model_requested)"
        case .resource: return "resource_id"
        case .day, .month:
            let days = self == .day
            switch dialect {
            case .sqlite: return days ? "strftime('%Y-%m-%d', at / 1000, 'unixepoch')" : "strftime('%Y-%m', at / 1000, 'unixepoch')"
            case .postgres: return "to_char(to_timestamp(at / 1000) AT TIME ZONE 'UTC', '\(days ? "YYYY-MM-DD" : "YYYY-MM")')"
            }
        }
    }
}

extension StoreConnection {
    public func usage(
        tenantId: String, from: Int64, to: Int64, groupBy: [UsageDimension], projectIds: [String]? = nil
    ) throws -> [UsageGroup] {
        var sql = "SELECT "
        for (i, d) in groupBy.enumerated() { sql += "\(d.sql(dialect)) AS g\(i), " }
        sql += """
            COUNT(*) AS requests, SUM(CASE WHEN status BETWEEN 200 AND 299 THEN 1 ELSE 0 END) AS succeeded, \
            SUM(tokens_in) AS tokens_in, SUM(tokens_out) AS tokens_out, SUM(tokens_cached) AS tokens_cached, \
            SUM(cost_micros) AS cost, SUM(upstream_cost_micros) AS upstream_cost, \
            SUM(CASE WHEN overflow = 1 THEN upstream_cost_micros ELSE 0 END) AS overflow_charge \
            FROM ledger WHERE tenant_id = ? AND at >= ? AND at < ?
            """
        var args: [SQLValue] = [.text(tenantId), .int(from), .int(to)]
        if let projectIds {
            sql += " AND project_id IN (\(Array(repeating: "?", count: max(1, projectIds.count)).joined(separator: ", ")))"
            args += projectIds.isEmpty ? [.text("")] : projectIds.map { .text($0) }
        }
        if !groupBy.isEmpty {
            let positions = (1...groupBy.count).map(String.init).joined(separator: ", ")
            sql += " GROUP BY \(positions) ORDER BY \(positions)"
        }
        return try query(sql, args).compactMap { r in
            // An aggregate over no rows is one row of NULL sums.
            guard try r.int("requests") > 0 else { return nil }
            return UsageGroup(
                keys: try (0..<groupBy.count).map { try r.optionalString("g\($0)") }, requests: try r.int("requests"),
                succeeded: try r.int("succeeded"), tokensIn: try r.int("tokens_in"), tokensOut: try r.int("tokens_out"),
                tokensCached: try r.int("tokens_cached"), costMicros: try r.int("cost"), upstreamCostMicros: try r.int("upstream_cost"),
                overflowChargeMicros: try r.int("overflow_charge"))
        }
    }

    /// Every request a resource served in a time range, oldest first per resource.
    public func resourceTimeline(tenantId: String, from: Int64, to: Int64) throws -> [ResourceUse] {
        try query(
            """
            SELECT resource_id, started_at, at, tokens_in + tokens_out AS tokens, \
            COALESCE(seat_id, key_id) || '/' || COALESCE(user_digest, '') AS holder \
            FROM ledger WHERE tenant_id = ? AND at >= ? AND at < ? AND resource_id IS NOT NULL ORDER BY resource_id, started_at
            """, [.text(tenantId), .int(from), .int(to)]
        ).map { r in
            ResourceUse(
                resourceId: try r.string("resource_id"), startedAt: try r.int("started_at"), finishedAt: try r.int("at"), tokens: try r.int("tokens"),
                holder: try r.string("holder"))
        }
    }

    /// Requests per resource and minute in a time range, in one query for every resource.
    public func minuteCounts(tenantId: String, from: Int64, to: Int64) throws -> [MinuteCount] {
        try query(
            """
            SELECT resource_id, at / 60000 AS minute, COUNT(*) AS n FROM ledger WHERE tenant_id = ? AND at >= ? AND at < ? \
            AND resource_id IS NOT NULL GROUP BY resource_id, minute
            """, [.text(tenantId), .int(from), .int(to)]
        ).map { r in MinuteCount(resourceId: try r.string("resource_id"), minute: try r.int("minute"), requests: try r.int("n")) }
    }

    /// When each resource was last used.
    public func lastUse(tenantId: String) throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for row in try query(
            "SELECT resource_id, MAX(at) AS last FROM ledger WHERE tenant_id = ? AND resource_id IS NOT NULL GROUP BY resource_id", [.text(tenantId)])
        {
            out[try row.string("resource_id")] = try row.int("last")
        }
        return out
    }

    /// Spend of each project (alone, not its children) in a time range, in one query.
    public func spendByProject(tenantId: String, from: Int64, to: Int64) throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for row in try query(
            "SELECT project_id, SUM(cost_micros) AS spent FROM ledger WHERE tenant_id = ? AND at >= ? AND at < ? GROUP BY project_id",
            [.text(tenantId), .int(from), .int(to)])
        {
            out[try row.string("project_id")] = try row.int("spent")
        }
        return out
    }

    /// Spend of a set of projects in a time range (list cost, budget-charged).
    public func spend(tenantId: String, projectIds: [String], from: Int64, to: Int64) throws -> Int64 {
        guard !projectIds.isEmpty else { return 0 }
        return try queryOne(
            """
            SELECT COALESCE(SUM(cost_micros), 0) AS spent FROM ledger WHERE tenant_id = ? AND at >= ? AND at < ? \
            AND project_id IN (\(Array(repeating: "?", count: projectIds.count).joined(separator: ", ")))
            """, [.text(tenantId), .int(from), .int(to)] + projectIds.map { .text($0) })?.int("spent") ?? 0
    }

    /// Distinct holders with at least one served request: seats, and users within keys (or the key).
    public func activeHolders(tenantId: String, from: Int64, to: Int64) throws -> Int64 {
        try queryOne(
            """
            SELECT COUNT(*) AS n FROM (SELECT DISTINCT COALESCE(seat_id, key_id || '/' || COALESCE(user_digest, '')) FROM ledger \
            WHERE tenant_id = ? AND at >= ? AND at < ? AND status BETWEEN 200 AND 299) AS holders
            """, [.text(tenantId), .int(from), .int(to)])?.int("n") ?? 0
    }

    /// Resource state transitions from the audit log, oldest first.
    public func stateTransitions(tenantId: String, until: Int64) throws -> [StateTransition] {
        try query(
            "SELECT target_id, at, summary_json FROM audit_log WHERE tenant_id = ? AND target_type = 'resource' AND at < ? ORDER BY id",
            [.text(tenantId), .int(until)]
        ).compactMap { row in
            let summary = try row.json("summary_json")
            guard let from = summary["from"]?.stringValue, let to = summary["to"]?.stringValue else { return nil }
            return StateTransition(resourceId: try row.string("target_id"), at: try row.int("at"), from: from, to: to)
        }
    }

    /// Holder names of a tenant's seats, by seat id (usage reports label seats by holder).
    public func seatHolders(tenantId: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for row in try query("SELECT id, holder FROM seats WHERE tenant_id = ?", [.text(tenantId)]) {
            out[try row.string("id")] = try row.string("holder")
        }
        return out
    }

    /// Requests, all-time spend and last use of each of a tenant's seats.
    public func seatUsage(tenantId: String, seatIds: [String]) throws -> [String: SeatUsage] {
        guard !seatIds.isEmpty else { return [:] }
        var out: [String: SeatUsage] = [:]
        let marks = Array(repeating: "?", count: seatIds.count).joined(separator: ", ")
        for row in try query(
            """
            SELECT seat_id, COUNT(*) AS requests, SUM(cost_micros) AS spent, MAX(at) AS last FROM ledger WHERE tenant_id = ? \
            AND seat_id IN (\(marks)) GROUP BY seat_id
            """, [.text(tenantId)] + seatIds.map { .text($0) })
        {
            out[try row.string("seat_id")] = SeatUsage(
                requests: try row.int("requests"), totalMicros: try row.int("spent"), lastUsed: try row.optionalInt("last"))
        }
        return out
    }
}

/// A seat's use over its whole life.
public struct SeatUsage: Sendable, Equatable {
    public var requests: Int64 = 0
    public var totalMicros: Int64 = 0
    public var lastUsed: Int64?

    public init(requests: Int64 = 0, totalMicros: Int64 = 0, lastUsed: Int64? = nil) {
        self.requests = requests
        self.totalMicros = totalMicros
        self.lastUsed = lastUsed
    }
}
