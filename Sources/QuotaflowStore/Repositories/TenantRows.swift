import QuotaflowCore

extension StoreConnection {
    static let tenantColumns = "id, name, status, settings_json, created_at, updated_at"

    func tenant(from row: Row) throws -> Tenant {
        Tenant(
            id: try row.string("id"), name: try row.string("name"), status: try row.enumeration("status", TenantStatus.self),
            settings: try row.stored("settings_json", TenantSettings.self), createdAt: try row.int("created_at"),
            updatedAt: try row.int("updated_at"))
    }

    public func insertTenant(_ t: Tenant) throws {
        try run(
            "INSERT INTO tenants (\(Self.tenantColumns)) VALUES (?, ?, ?, ?, ?, ?)",
            [.text(t.id), .text(t.name), .text(t.status.rawValue), .text(t.settings.storedText), .int(t.createdAt), .int(t.updatedAt)])
    }

    public func updateTenant(_ t: Tenant) throws {
        try run(
            "UPDATE tenants SET name = ?, status = ?, settings_json = ?, updated_at = ? WHERE id = ?",
            [.text(t.name), .text(t.status.rawValue), .text(t.settings.storedText), .int(t.updatedAt), .text(t.id)])
    }

    public func tenant(id: String) throws -> Tenant? {
        try queryOne("SELECT \(Self.tenantColumns) FROM tenants WHERE id = ?", [.text(id)]).map(tenant(from:))
    }

    public func tenants(after cursor: String?, limit: Int) throws -> [Tenant] {
        try query(
            "SELECT \(Self.tenantColumns) FROM tenants WHERE id > ? ORDER BY id LIMIT ?", [.text(cursor ?? ""), .int(Int64(limit))]
        ).map(tenant(from:))
    }

    public func allTenants() throws -> [Tenant] {
        try query("SELECT \(Self.tenantColumns) FROM tenants ORDER BY id").map(tenant(from:))
    }

    // MARK: settings

    public func setting(_ key: String) throws -> String? {
        try queryOne("SELECT value FROM settings WHERE key = ?", [.text(key)])?.string("value")
    }

    public func setSetting(_ key: String, _ value: String) throws {
        try run(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [.text(key), .text(value)])
    }

    // MARK: admin keys

    static let adminKeyColumns = "id, tenant_id, name, prefix, created_by, created_at, revoked_at, scope"

    func adminKey(from row: Row) throws -> AdminKey {
        AdminKey(
            id: try row.string("id"), tenantId: try row.string("tenant_id"), name: try row.string("name"), prefix: try row.string("prefix"),
            createdBy: try row.string("created_by"), createdAt: try row.int("created_at"), revokedAt: try row.optionalInt("revoked_at"),
            scope: try row.enumeration("scope", AdminScope.self))
    }

    public func insertAdminKey(_ k: AdminKey, digest: String) throws {
        try run(
            "INSERT INTO admin_keys (id, tenant_id, name, prefix, digest, created_by, created_at, scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                .text(k.id), .text(k.tenantId), .text(k.name), .text(k.prefix), .text(digest), .text(k.createdBy), .int(k.createdAt),
                .text(k.scope.rawValue),
            ])
    }

    /// A page of the tenant's admin keys in the order they were made: after position `after`, at most `limit`.
    public func adminKeys(tenantId: String, after: Int64?, limit: Int) throws -> [(key: AdminKey, position: Int64)] {
        try query(
            "SELECT \(Self.adminKeyColumns), rowid AS position FROM admin_keys WHERE tenant_id = ? AND rowid > ? ORDER BY rowid LIMIT ?",
            [.text(tenantId), .int(after ?? 0), .int(Int64(limit))]
        ).map { row in (try adminKey(from: row), try row.int("position")) }
    }

    public func adminKey(tenantId: String, id: String) throws -> AdminKey? {
        try queryOne("SELECT \(Self.adminKeyColumns) FROM admin_keys WHERE tenant_id = ? AND id = ?", [.text(tenantId), .text(id)])
            .map(adminKey(from:))
    }

    /// The live admin key with this digest, if any.
    public func adminKey(digest: String) throws -> AdminKey? {
        try queryOne("SELECT \(Self.adminKeyColumns) FROM admin_keys WHERE digest = ? AND revoked_at IS NULL", [.text(digest)])
            .map(adminKey(from:))
    }

    public func revokeAdminKey(tenantId: String, id: String, at: Int64) throws -> Bool {
        try run(
            "UPDATE admin_keys SET revoked_at = ? WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL",
            [.int(at), .text(tenantId), .text(id)]) > 0
    }

    // MARK: audit log

    public func appendAudit(_ e: AuditEntry) throws {
        try run(
            "INSERT INTO audit_log (tenant_id, at, actor, action, target_type, target_id, summary_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [.text(e.tenantId), .int(e.at), .text(e.actor), .text(e.action), .text(e.targetType), .text(e.targetId), .text(e.summary.text)])
    }

    /// Newest first. `before` is the id of the last entry of the previous page.
    public func auditEntries(
        tenantId: String?, before: Int64?, limit: Int, targetId: String? = nil, action: String? = nil
    ) throws -> [AuditEntry] {
        var sql = "SELECT id, tenant_id, at, actor, action, target_type, target_id, summary_json FROM audit_log WHERE id < ?"
        var args: [SQLValue] = [.int(before ?? Int64.max)]
        if let tenantId {
            sql += " AND tenant_id = ?"
            args.append(.text(tenantId))
        } else {
            sql += " AND tenant_id IS NULL"
        }
        if let targetId {
            sql += " AND target_id = ?"
            args.append(.text(targetId))
        }
        if let action {
            sql += " AND action LIKE ?"
            args.append(.text(action.hasSuffix("*") ? String(action.dropLast()) + "%" : action))
        }
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(.int(Int64(limit)))
        return try query(sql, args).map { row in
            AuditEntry(
                id: try row.int("id"), tenantId: try row.optionalString("tenant_id"), at: try row.int("at"), actor: try row.string("actor"),
                action: try row.string("action"), targetType: try row.string("target_type"), targetId: try row.string("target_id"),
                summary: try row.json("summary_json"))
        }
    }
}
