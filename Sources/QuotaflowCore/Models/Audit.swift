/// One entry of the append-only audit log: an admin change or a resource state transition.
public struct AuditEntry: Sendable, Equatable {
    public var id: Int64
    public var tenantId: String?
    public var at: Int64
    /// `operator`, `admin_key:<id>`, `system:verifier`, `system:router`, ...
    public var actor: String
    /// `pool.create`, `resource.state`, `key.revoke`, ...
    public var action: String
    public var targetType: String
    public var targetId: String
    /// What changed and why, never a secret.
    public var summary: JSONValue

    public init(
        id: Int64 = 0, tenantId: String?, at: Int64, actor: String, action: String, targetType: String, targetId: String,
        summary: JSONValue = [:]
    ) {
        self.id = id
        self.tenantId = tenantId
        self.at = at
        self.actor = actor
        self.action = action
        self.targetType = targetType
        self.targetId = targetId
        self.summary = summary
    }
}
