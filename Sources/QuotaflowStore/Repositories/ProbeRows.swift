import QuotaflowCore

/// One stored probe.
public struct ProbeRecord: Sendable, Equatable {
    public var id: Int64 = 0
    public var tenantId: String
    public var resourceId: String
    public var at: Int64
    public var ok: Bool
    public var latencyMs: Int64
    public var status: Int?
    public var reason: String
    /// Each check with its result: reachability, credential, models, rate limits, completion.
    public var checks: JSONValue
    /// Rate-limit headers seen, as evidence.
    public var headers: JSONValue
    /// `admission`, `schedule`, `half_open` or `manual`.
    public var trigger: String

    public init(
        tenantId: String, resourceId: String, at: Int64, ok: Bool, latencyMs: Int64, status: Int?, reason: String, checks: JSONValue,
        headers: JSONValue, trigger: String
    ) {
        self.tenantId = tenantId
        self.resourceId = resourceId
        self.at = at
        self.ok = ok
        self.latencyMs = latencyMs
        self.status = status
        self.reason = reason
        self.checks = checks
        self.headers = headers
        self.trigger = trigger
    }
}

extension SQLiteConnection {
    /// Stores a probe and keeps only the newest `keep` for the resource.
    public func insertProbe(_ p: ProbeRecord, keep: Int) throws {
        try run(
            """
            INSERT INTO probe_results (tenant_id, resource_id, at, ok, latency_ms, status, reason, checks_json, headers_json, trigger) \
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(p.tenantId), .text(p.resourceId), .int(p.at), .bool(p.ok), .int(p.latencyMs), .int(p.status.map { Int64($0) }),
                .text(p.reason), .text(p.checks.text), .text(p.headers.text), .text(p.trigger),
            ])
        try run(
            """
            DELETE FROM probe_results WHERE resource_id = ? AND id NOT IN \
            (SELECT id FROM probe_results WHERE resource_id = ? ORDER BY id DESC LIMIT ?)
            """, [.text(p.resourceId), .text(p.resourceId), .int(Int64(keep))])
    }

    public func probes(tenantId: String, resourceId: String, limit: Int) throws -> [ProbeRecord] {
        try query(
            """
            SELECT id, tenant_id, resource_id, at, ok, latency_ms, status, reason, checks_json, headers_json, trigger FROM probe_results \
            WHERE tenant_id = ? AND resource_id = ? ORDER BY id DESC LIMIT ?
            """, [.text(tenantId), .text(resourceId), .int(Int64(limit))]
        ).map { r in
            var p = ProbeRecord(
                tenantId: r.string(1), resourceId: r.string(2), at: r.int(3), ok: r.bool(4), latencyMs: r.int(5),
                status: r.optionalInt(6).map { Int($0) }, reason: r.string(7), checks: .stored(r.string(8), fallback: []),
                headers: .stored(r.string(9), fallback: [:]), trigger: r.string(10))
            p.id = r.int(0)
            return p
        }
    }

    public func resourceHealth(id: String) throws -> JSONValue {
        .stored(try queryOne("SELECT health_json FROM resources WHERE id = ?", [.text(id)])?.string(0) ?? "{}", fallback: [:])
    }

    public func setResourceHealth(id: String, _ health: JSONValue) throws {
        try run("UPDATE resources SET health_json = ? WHERE id = ?", [.text(health.text), .text(id)])
    }

    /// Starts verification over for a resource that went back to `pending` (a new credential, a new
    /// upstream, a resume): its probe streaks and next probe time are cleared, so the verifier probes
    /// it at once instead of at the old schedule or cooldown. What was learned of its limits stays.
    public func restartVerification(id: String) throws {
        let learned = try resourceHealth(id: id)["learned"]
        try setResourceHealth(id: id, .compact([("learned", learned)]))
    }

    /// Every resource's health document, for the verifier's schedule.
    public func allResourceHealth() throws -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for row in try query("SELECT id, health_json FROM resources WHERE state != 'revoked'") {
            out[row.string(0)] = .stored(row.string(1), fallback: [:])
        }
        return out
    }
}
