import QuotaflowCore

extension StoreConnection {
    static let approvalColumns = """
        id, tenant_id, project_id, key_id, requested_by, model, detail, status, requested_at, decided_at, decided_by, grant_micros, \
        grant_model, grant_until, note
        """

    func approval(from r: Row) throws -> Approval {
        Approval(
            id: try r.string("id"), tenantId: try r.string("tenant_id"), projectId: try r.string("project_id"), keyId: try r.optionalString("key_id"),
            requestedBy: try r.string("requested_by"), model: try r.optionalString("model"), detail: try r.string("detail"),
            status: try r.enumeration("status", Approval.Status.self), requestedAt: try r.int("requested_at"),
            decidedAt: try r.optionalInt("decided_at"),
            decidedBy: try r.optionalString("decided_by"), grantMicros: try r.optionalInt("grant_micros"),
            grantModel: try r.optionalString("grant_model"),
            grantUntil: try r.optionalInt("grant_until"), note: try r.string("note"))
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
        if let existing { return (try existing.string("id"), false) }
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

    /// A page of the tenant's approvals, newest first: before position `before`, at most `limit`.
    public func approvals(tenantId: String, status: Approval.Status?, before: Int64?, limit: Int) throws -> [(approval: Approval, position: Int64)] {
        var sql = "SELECT \(Self.approvalColumns), rowid AS position FROM approvals WHERE tenant_id = ? AND rowid < ?"
        var args: [SQLValue] = [.text(tenantId), .int(before ?? Int64.max)]
        if let status {
            sql += " AND status = ?"
            args.append(.text(status.rawValue))
        }
        return try query(sql + " ORDER BY rowid DESC LIMIT ?", args + [.int(Int64(limit))]).map { row in
            (try approval(from: row), try row.int("position"))
        }
    }

    /// Open requests and grants still in force, for the routing catalog.
    public func liveApprovals(now: Int64) throws -> [Approval] {
        try query(
            "SELECT \(Self.approvalColumns) FROM approvals WHERE status = 'open' OR (status = 'approved' AND grant_until > ?) ORDER BY requested_at, id",
            [.int(now)]
        ).map(approval(from:))
    }
}
