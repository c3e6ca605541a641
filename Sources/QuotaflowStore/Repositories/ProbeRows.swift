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
    public var trigger: ProbeTrigger

    public init(
        tenantId: String, resourceId: String, at: Int64, ok: Bool, latencyMs: Int64, status: Int?, reason: String, checks: JSONValue,
        headers: JSONValue, trigger: ProbeTrigger
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

extension StoreConnection {
    /// Stores a probe and keeps only the newest `keep` for the resource.
    public func insertProbe(_ p: ProbeRecord, keep: Int) throws {
        try run(
            """
            INSERT INTO probe_results (tenant_id, resource_id, at, ok, latency_ms, status, reason, checks_json, headers_json, trigger) \
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(p.tenantId), .text(p.resourceId), .int(p.at), .bool(p.ok), .int(p.latencyMs), .int(p.status.map { Int64($0) }),
                .text(p.reason), .text(p.checks.text), .text(p.headers.text), .text(p.trigger.rawValue),
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
                tenantId: try r.string("tenant_id"), resourceId: try r.string("resource_id"), at: try r.int("at"), ok: try r.bool("ok"),
                latencyMs: try r.int("latency_ms"), status: try r.optionalInt("status").map { Int($0) }, reason: try r.string("reason"),
                checks: try r.json("checks_json"), headers: try r.json("headers_json"), trigger: try r.enumeration("trigger", ProbeTrigger.self))
            p.id = try r.int("id")
            return p
        }
    }

    public func resourceHealth(id: String) throws -> ResourceHealth {
        guard let row = try queryOne("SELECT health_json FROM resources WHERE id = ?", [.text(id)]) else { return ResourceHealth() }
        return try row.stored("health_json", ResourceHealth.self)
    }

    public func setResourceHealth(id: String, _ health: ResourceHealth) throws {
        try run("UPDATE resources SET health_json = ? WHERE id = ?", [.text(health.storedText), .text(id)])
    }

    /// Starts verification over for a resource that went back to `pending` (a new credential, a new
    /// upstream, a resume): its probe streaks and next probe time are cleared, so the verifier probes
    /// it at once instead of at the old schedule or cooldown. What was learned of its limits stays.
    public func restartVerification(id: String) throws {
        try setResourceHealth(id: id, ResourceHealth(learned: try resourceHealth(id: id).learned))
    }

    /// Every resource's health document, for the verifier's schedule.
    public func allResourceHealth() throws -> [String: ResourceHealth] {
        var out: [String: ResourceHealth] = [:]
        for row in try query("SELECT id, health_json FROM resources WHERE state != 'revoked'") {
            out[try row.string("id")] = try row.stored("health_json", ResourceHealth.self)
        }
        return out
    }
}
