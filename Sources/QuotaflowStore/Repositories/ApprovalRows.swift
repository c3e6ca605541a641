import QuotaflowCore

extension SQLiteConnection {
    static let approvalColumns = """
        id, tenant_id, project_id, key_id, requested_by, model, detail, status, requested_at, decided_at, decided_by, grant_micros, \
        grant_model, grant_until, note
        """

    func approval(from r: Row) -> Approval {
        Approval(
            id: r.string(0), tenantId: r.string(1), projectId: r.string(2), keyId: r.optionalString(3), requestedBy: r.string(4),
            model: r.optionalString(5), detail: r.string(6), status: Approval.Status(rawValue: r.string(7)) ?? .denied, requestedAt: r.int(8),
            decidedAt: r.optionalInt(9), decidedBy: r.optionalString(10), grantMicros: r.optionalInt(11), grantModel: r.optionalString(12),
            grantUntil: r.optionalInt(13), note: r.string(14))
    }

    public func insertApproval(_ a: Approval) throws {
        try run(
            "INSERT INTO approvals (\(Self.approvalColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                .text(a.id), .text(a.tenantId), .text(a.projectId), .text(a.keyId), .text(a.requestedBy), .text(a.model), .text(a.detail),
                .text(a.status.rawValue), .int(a.requestedAt), .int(a.decidedAt), .text(a.decidedBy), .int(a.grantMicros), .text(a.grantModel),
                .int(a.grantUntil), .text(a.note),
            ])
    }

    /// Opens `a`, or returns the request already open for the same project and key. Run inside the
    /// write transaction, this is atomic: concurrent over-budget requests share one approval request
    /// (a unique index backs it up). Returns the id and whether it was created now.
    public func openOrReuseApproval(_ a: Approval) throws -> (id: String, created: Bool) {
        let existing = try queryOne(
            "SELECT id FROM approvals WHERE tenant_id = ? AND project_id = ? AND COALESCE(key_id, '') = ? AND status = 'open'",
            [.text(a.tenantId), .text(a.projectId), .text(a.keyId ?? "")])
        if let existing { return (existing.string(0), false) }
        try insertApproval(a)
        return (a.id, true)
    }

    public func updateApproval(_ a: Approval) throws {
        try run(
            """
            UPDATE approvals SET status = ?, decided_at = ?, decided_by = ?, grant_micros = ?, grant_model = ?, grant_until = ?, note = ? \
            WHERE tenant_id = ? AND id = ?
            """,
            [
                .text(a.status.rawValue), .int(a.decidedAt), .text(a.decidedBy), .int(a.grantMicros), .text(a.grantModel), .int(a.grantUntil),
                .text(a.note), .text(a.tenantId), .text(a.id),
            ])
    }

    public func approval(tenantId: String, id: String) throws -> Approval? {
        try queryOne("SELECT \(Self.approvalColumns) FROM approvals WHERE tenant_id = ? AND id = ?", [.text(tenantId), .text(id)])
            .map(approval(from:))
    }

    public func approvals(tenantId: String, status: Approval.Status?) throws -> [Approval] {
        if let status {
            return try query(
                "SELECT \(Self.approvalColumns) FROM approvals WHERE tenant_id = ? AND status = ? ORDER BY requested_at DESC",
                [.text(tenantId), .text(status.rawValue)]
            ).map(approval(from:))
        }
        return try query("SELECT \(Self.approvalColumns) FROM approvals WHERE tenant_id = ? ORDER BY requested_at DESC", [.text(tenantId)])
            .map(approval(from:))
    }

    /// Open requests and grants still in force, for the routing catalog.
    public func liveApprovals(now: Int64) throws -> [Approval] {
        try query(
            "SELECT \(Self.approvalColumns) FROM approvals WHERE status = 'open' OR (status = 'approved' AND grant_until > ?)", [.int(now)]
        ).map(approval(from:))
    }
}
