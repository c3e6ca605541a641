/// A tenant administrator's key for the admin API.
public struct AdminKey: Sendable, Equatable {
    public var id: String
    public var tenantId: String
    public var name: String
    public var prefix: String
    public var createdBy: String
    public var createdAt: Int64
    public var revokedAt: Int64?
    /// What the key may do: everything (`admin`) or read only (`viewer`).
    public var scope: AdminScope

    public init(
        id: String, tenantId: String, name: String, prefix: String, createdBy: String, createdAt: Int64, revokedAt: Int64? = nil,
        scope: AdminScope = .admin
    ) {
        self.scope = scope
        self.id = id
        self.tenantId = tenantId
        self.name = name
        self.prefix = prefix
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}

/// A long-lived data-plane key scoped to one project.
public struct ProjectKey: Sendable, Equatable {
    public var id: String
    public var tenantId: String
    public var projectId: String
    public var name: String
    public var prefix: String
    /// Narrows the project's models; empty inherits them.
    public var allowedModels: [String]
    /// Monthly budget of this key, on the project's period.
    public var budgetCapMicros: Int64?
    public var rpm: Int64?
    public var createdBy: String
    public var createdAt: Int64
    public var revokedAt: Int64?

    public init(
        id: String, tenantId: String, projectId: String, name: String, prefix: String, allowedModels: [String] = [],
        budgetCapMicros: Int64? = nil, rpm: Int64? = nil, createdBy: String, createdAt: Int64, revokedAt: Int64? = nil
    ) {
        self.id = id
        self.tenantId = tenantId
        self.projectId = projectId
        self.name = name
        self.prefix = prefix
        self.allowedModels = allowedModels
        self.budgetCapMicros = budgetCapMicros
        self.rpm = rpm
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}

/// A temporary data-plane key for one named holder.
public struct Seat: Sendable, Equatable {
    public var id: String
    public var tenantId: String
    public var projectId: String
    public var holder: String
    public var contact: String
    public var note: String
    public var prefix: String
    public var expiresAt: Int64
    public var budgetCapMicros: Int64?
    public var rpm: Int64?
    public var allowedModels: [String]
    /// After a rotation the previous key keeps working until this time.
    public var previousValidUntil: Int64?
    public var revokedAt: Int64?
    /// Set by the expiry sweep.
    public var expiredAt: Int64?
    public var createdBy: String
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(
        id: String, tenantId: String, projectId: String, holder: String, contact: String = "", note: String = "", prefix: String,
        expiresAt: Int64, budgetCapMicros: Int64? = nil, rpm: Int64? = nil, allowedModels: [String] = [], previousValidUntil: Int64? = nil,
        revokedAt: Int64? = nil, expiredAt: Int64? = nil, createdBy: String, createdAt: Int64, updatedAt: Int64
    ) {
        self.id = id
        self.tenantId = tenantId
        self.projectId = projectId
        self.holder = holder
        self.contact = contact
        self.note = note
        self.prefix = prefix
        self.expiresAt = expiresAt
        self.budgetCapMicros = budgetCapMicros
        self.rpm = rpm
        self.allowedModels = allowedModels
        self.previousValidUntil = previousValidUntil
        self.revokedAt = revokedAt
        self.expiredAt = expiredAt
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    public func state(at now: Int64) -> SeatState {
        if revokedAt != nil { return .revoked }
        if now >= expiresAt { return .expired }
        return .active
    }
}

/// What a tenant admin key may do. A `viewer` key (finance, auditors) reads everything its tenant's
/// admin API shows and changes nothing; the API refuses its writes, not only the console.
public enum AdminScope: String, Sendable, CaseIterable, Codable {
    case admin, viewer
}
