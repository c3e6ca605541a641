import QuotaflowCore
import QuotaflowStore

/// Takes resources (or one model on a resource) out of routing after an upstream said so, at once
/// in memory, and records the state change and its evidence through the state writer.
struct Cooldowns: Sendable {
    let engine: AdmissionEngine
    let writer: StateWriter
    let metrics: Metrics
    let clock: any WallClock

    /// How long a model a resource answered 404 for stays off that resource.
    static let modelCooldownMs: Int64 = 600_000

    /// Cools `resource` until `until` and records why (the upstream's status and headers as evidence).
    func cool(_ resource: RoutableResource, until: Int64, status: Int?, evidence: [(String, String)], cause: String) {
        guard engine.cool(resourceId: resource.id, until: until) else { return }
        metrics.cooled()
        let id = resource.id
        let tenantId = resource.resource.tenantId
        let now = clock.nowMs()
        writer.submit("cooldown of \(id)", republish: true) { conn in
            guard var r = try conn.resource(tenantId: tenantId, id: id), r.state == .active || r.state == .degraded || r.state == .cooling else {
                return
            }
            let before = r.state
            r.state = .cooling
            r.coolingUntil = max(until, r.coolingUntil ?? 0)
            r.stateReason = "cooling until \(Timestamp.format(r.coolingUntil!)) after \(cause)"
            r.stateChangedAt = now
            r.updatedAt = now
            try conn.updateResource(r)
            try conn.appendAudit(
                AuditEntry(
                    tenantId: tenantId, at: now, actor: "system:router", action: "resource.state", targetType: "resource", targetId: id,
                    summary: [
                        "from": .string(before.rawValue), "to": "cooling", "until": .string(Timestamp.format(r.coolingUntil!)),
                        "cause": .string(cause), "status": .int(status.map { Int64($0) }),
                        "headers": .object(evidence.map { ($0.0, .string($0.1)) }),
                    ]))
        }
    }

    /// Takes `model` off a resource that answered 404 for it, and records why. The resource keeps
    /// serving its other models.
    func coolModel(_ resource: RoutableResource, model: String, evidence body: [UInt8]) {
        let now = clock.nowMs()
        let until = now + Self.modelCooldownMs
        guard engine.coolModel(resourceId: resource.id, model: model, until: until, forgetBefore: now) else { return }
        let entry = AuditEntry(
            tenantId: resource.resource.tenantId, at: now, actor: "system:router", action: "resource.model_cooled", targetType: "resource",
            targetId: resource.id,
            summary: [
                "model": .string(model), "until": .string(Timestamp.format(until)), "status": 404,
                "upstream_error": .string(resource.redactor.redact(String(decoding: body.prefix(500), as: UTF8.self))),
            ])
        writer.submit("model cooldown on \(resource.id)") { conn in try conn.appendAudit(entry) }
    }
}
