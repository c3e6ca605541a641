import QuotaflowCore
import QuotaflowStore

/// Approval requests opened by over-budget requests under the `approval` overage policy.
struct Approvals: Sendable {
    let writer: StateWriter
    let alerts: Alerts
    let clock: any WallClock

    /// Opens an approval request for a project, or finds the one already open for the same project
    /// and key, and returns its id. The check and the insert are one write transaction (and a unique
    /// index backs them), so concurrent over-budget requests never open two.
    func open(caller: Caller, projectId: String, model: String, detail: String) async throws -> String {
        let approval = Approval(
            id: Identifier.make("apr"), tenantId: caller.tenant.id, projectId: projectId, keyId: caller.key.id,
            requestedBy: "\(caller.key.kind == .seat ? "seat" : "key"):\(caller.key.id)", model: model, detail: detail,
            requestedAt: clock.nowMs())
        let (id, created) = try await writer.perform("approval request for \(projectId)") { conn in
            let result = try conn.openOrReuseApproval(approval)
            if result.created {
                try conn.appendAudit(
                    AuditEntry(
                        tenantId: approval.tenantId, at: approval.requestedAt, actor: approval.requestedBy, action: "approval.open",
                        targetType: "approval", targetId: approval.id, summary: ["project_id": .string(projectId), "detail": .string(detail)]))
                try alerts.approvalOpened(approval, conn: conn)
            }
            return result
        }
        if created { alerts.wake.poke() }
        return id
    }
}
