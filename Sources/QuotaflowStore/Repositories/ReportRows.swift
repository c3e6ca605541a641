import QuotaflowCore

/// Dimensions the usage report can group by.
public enum UsageDimension: String, Sendable, CaseIterable {
    case project, key, holder, provider, model, resource, day, month

    var sql: String {
        switch self {
        case .project: return "project_id"
        case .key: return "COALESCE(seat_id, key_id)"
        case .holder:
            return "CASE WHEN seat_id IS NOT NULL THEN 'seat:' || seat_id WHEN user_digest IS NOT NULL THEN 'user:' || user_digest ELSE 'key:' || key_id END"
        case .provider: return "provider"
        case .model: return "COALESCE(model_served, model_requested)"
        case .resource: return "resource_id"
        case .day: return "strftime('%Y-%m-%d', at / 1000, 'unixepoch')"
        case .month: return "strftime('%Y-%m', at / 1000, 'unixepoch')"
        }
    }
}

/// One group of the usage report.
public struct UsageGroup: Sendable, Equatable {
    public var keys: [String?]
    public var requests: Int64
    public var succeeded: Int64
    public var tokensIn: Int64
    public var tokensOut: Int64
    public var tokensCached: Int64
    public var costMicros: Int64
    public var upstreamCostMicros: Int64
    public var overflowChargeMicros: Int64
}

extension SQLiteConnection {
    public func usage(
        tenantId: String, from: Int64, to: Int64, groupBy: [UsageDimension], projectIds: [String]? = nil
    ) throws -> [UsageGroup] {
        let dims = groupBy.map(\.sql)
        var sql = "SELECT "
        sql += dims.isEmpty ? "" : dims.joined(separator: ", ") + ", "
        sql += """
            COUNT(*), SUM(CASE WHEN status BETWEEN 200 AND 299 THEN 1 ELSE 0 END), SUM(tokens_in), SUM(tokens_out), SUM(tokens_cached), \
            SUM(cost_micros), SUM(upstream_cost_micros), SUM(CASE WHEN overflow = 1 THEN upstream_cost_micros ELSE 0 END) \
            FROM ledger WHERE tenant_id = ? AND at >= ? AND at < ?
            """
        var args: [SQLValue] = [.text(tenantId), .int(from), .int(to)]
        if let projectIds {
            sql += " AND project_id IN (\(Array(repeating: "?", count: max(1, projectIds.count)).joined(separator: ", ")))"
            args += projectIds.isEmpty ? [.text("")] : projectIds.map { .text($0) }
        }
        if !dims.isEmpty {
            let positions = (1...dims.count).map(String.init).joined(separator: ", ")
            sql += " GROUP BY \(positions) ORDER BY \(positions)"
        }
        let n = dims.count
        return try query(sql, args).map { r in
            UsageGroup(
                keys: (0..<n).map { r.optionalString($0) }, requests: r.int(n), succeeded: r.int(n + 1), tokensIn: r.int(n + 2),
                tokensOut: r.int(n + 3), tokensCached: r.int(n + 4), costMicros: r.int(n + 5), upstreamCostMicros: r.int(n + 6),
                overflowChargeMicros: r.int(n + 7))
        }
    }

    /// Ledger rows after `seq` in order, a page at a time (for streamed exports).
    public func ledgerPage(tenantId: String, from: Int64, to: Int64, afterSeq: Int64, limit: Int) throws -> [LedgerEntry] {
        try query(
            "SELECT \(Self.ledgerColumns) FROM ledger WHERE tenant_id = ? AND at >= ? AND at < ? AND seq > ? ORDER BY seq LIMIT ?",
            [.text(tenantId), .int(from), .int(to), .int(afterSeq), .int(Int64(limit))]
        ).map(ledgerEntry(from:))
    }

    /// Per-resource request timeline for utilization: (resource, started, finished, tokens, holder), oldest first.
    public func resourceTimeline(tenantId: String, from: Int64, to: Int64) throws -> [(String, Int64, Int64, Int64, String)] {
        try query(
            """
            SELECT resource_id, started_at, at, tokens_in + tokens_out, COALESCE(seat_id, key_id) || '/' || COALESCE(user_digest, '') \
            FROM ledger WHERE tenant_id = ? AND at >= ? AND at < ? AND resource_id IS NOT NULL ORDER BY resource_id, started_at
            """, [.text(tenantId), .int(from), .int(to)]
        ).map { ($0.string(0), $0.int(1), $0.int(2), $0.int(3), $0.string(4)) }
    }

    /// Minutes in which a resource served at least `threshold` requests.
    public func busyMinutes(tenantId: String, resourceId: String, from: Int64, to: Int64, threshold: Int64) throws -> Int64 {
        try queryOne(
            """
            SELECT COUNT(*) FROM (SELECT at / 60000 AS minute, COUNT(*) AS n FROM ledger WHERE tenant_id = ? AND resource_id = ? \
            AND at >= ? AND at < ? GROUP BY minute HAVING n >= ?)
            """, [.text(tenantId), .text(resourceId), .int(from), .int(to), .int(threshold)])?.int(0) ?? 0
    }

    /// When each resource was last used.
    public func lastUse(tenantId: String) throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for row in try query("SELECT resource_id, MAX(at) FROM ledger WHERE tenant_id = ? AND resource_id IS NOT NULL GROUP BY resource_id", [.text(tenantId)]) {
            out[row.string(0)] = row.int(1)
        }
        return out
    }

    /// Spend of a set of projects in a time range (list cost, budget-charged).
    public func spend(tenantId: String, projectIds: [String], from: Int64, to: Int64) throws -> Int64 {
        guard !projectIds.isEmpty else { return 0 }
        return try queryOne(
            "SELECT COALESCE(SUM(cost_micros), 0) FROM ledger WHERE tenant_id = ? AND at >= ? AND at < ? AND project_id IN (\(Array(repeating: "?", count: projectIds.count).joined(separator: ", ")))",
            [.text(tenantId), .int(from), .int(to)] + projectIds.map { .text($0) })?.int(0) ?? 0
    }

    /// Distinct holders with at least one served request: seats, and users within keys (or the key).
    public func activeHolders(tenantId: String, from: Int64, to: Int64) throws -> Int64 {
        try queryOne(
            """
            SELECT COUNT(*) FROM (SELECT DISTINCT COALESCE(seat_id, key_id || '/' || COALESCE(user_digest, '')) FROM ledger \
            WHERE tenant_id = ? AND at >= ? AND at < ? AND status BETWEEN 200 AND 299)
            """, [.text(tenantId), .int(from), .int(to)])?.int(0) ?? 0
    }

    /// Resource state transitions from the audit log, oldest first.
    public func stateTransitions(tenantId: String, until: Int64) throws -> [(String, Int64, String, String)] {
        try query(
            "SELECT target_id, at, summary_json FROM audit_log WHERE tenant_id = ? AND target_type = 'resource' AND at < ? ORDER BY id",
            [.text(tenantId), .int(until)]
        ).compactMap { row in
            let summary = JSONValue.stored(row.string(2), fallback: [:])
            guard let from = summary["from"]?.stringValue, let to = summary["to"]?.stringValue else { return nil }
            return (row.string(0), row.int(1), from, to)
        }
    }
}
