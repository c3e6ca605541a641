import QuotaflowCore

/// A console sign-in as stored: the digest of its cookie's id, who opened it, and its CSRF token.
public struct ConsoleSessionRow: Sendable, Equatable {
    public var idDigest: String
    /// The admin key it was opened with; nil for the operator.
    public var keyId: String?
    /// The digest of the operator token it was opened with; nil for an admin key.
    public var operatorDigest: String?
    /// The tenant it looks at: the key's own tenant, or the one the operator picked (nil until then).
    public var tenantId: String?
    public var csrf: String
    public var createdAt: Int64
    public var expiresAt: Int64
    /// The key's scope, read with the session (always `.admin` for the operator).
    public var scope: AdminScope
    /// The key's name, read with the session (empty for the operator).
    public var keyName = ""

    public init(
        idDigest: String, keyId: String?, operatorDigest: String?, tenantId: String?, csrf: String, createdAt: Int64, expiresAt: Int64,
        scope: AdminScope = .admin
    ) {
        self.idDigest = idDigest
        self.keyId = keyId
        self.operatorDigest = operatorDigest
        self.tenantId = tenantId
        self.csrf = csrf
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.scope = scope
    }
}

extension StoreConnection {
    /// Stores a new sign-in and drops the sessions that have expired (an index range, not a scan).
    public func insertConsoleSession(_ s: ConsoleSessionRow) throws {
        _ = try run("DELETE FROM console_sessions WHERE expires_at <= ?", [.int(s.createdAt)])
        try run(
            "INSERT INTO console_sessions (id_digest, key_id, operator_digest, tenant_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [.text(s.idDigest), .text(s.keyId), .text(s.operatorDigest), .text(s.tenantId), .text(s.csrf), .int(s.createdAt), .int(s.expiresAt)])
    }

    /// The live session with this digest: unexpired, and (for a key) opened with a key that is not revoked.
    public func consoleSession(digest: String, now: Int64) throws -> ConsoleSessionRow? {
        let row = try queryOne(
            """
            SELECT s.id_digest, s.key_id, s.operator_digest, s.tenant_id, s.csrf, s.created_at, s.expires_at, k.scope, k.revoked_at, k.name AS key_name,
                   k.tenant_id AS key_tenant
            FROM console_sessions s LEFT JOIN admin_keys k ON k.id = s.key_id
            WHERE s.id_digest = ? AND s.expires_at > ?
            """, [.text(digest), .int(now)])
        guard let row else { return nil }
        let keyId = try row.optionalString("key_id")
        if keyId != nil {
            guard try row.optionalInt("revoked_at") == nil, try row.optionalString("key_tenant") != nil else { return nil }
        }
        var session = ConsoleSessionRow(
            idDigest: try row.string("id_digest"), keyId: keyId, operatorDigest: try row.optionalString("operator_digest"),
            tenantId: try row.optionalString("tenant_id"), csrf: try row.string("csrf"), createdAt: try row.int("created_at"),
            expiresAt: try row.int("expires_at"),
            scope: keyId == nil ? .admin : (AdminScope(rawValue: try row.string("scope")) ?? .viewer))
        session.keyName = try row.optionalString("key_name") ?? ""
        return session
    }

    /// The operator's choice of tenant.
    public func setConsoleSessionTenant(digest: String, tenantId: String) throws {
        _ = try run(
            "UPDATE console_sessions SET tenant_id = ? WHERE id_digest = ? AND operator_digest IS NOT NULL", [.text(tenantId), .text(digest)])
    }

    /// Sign-out: the session is gone, whatever the browser keeps.
    public func deleteConsoleSession(digest: String) throws {
        _ = try run("DELETE FROM console_sessions WHERE id_digest = ?", [.text(digest)])
    }
}
