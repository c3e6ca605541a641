/// One company. Everything else belongs to exactly one tenant.
public struct Tenant: Sendable, Equatable {
    public var id: String
    public var name: String
    public var status: TenantStatus
    public var settings: TenantSettings
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(id: String, name: String, status: TenantStatus = .active, settings: TenantSettings = .init(), createdAt: Int64, updatedAt: Int64) {
        self.id = id
        self.name = name
        self.status = status
        self.settings = settings
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// Tenant-wide policy: the outer bounds that every project sits inside.
public struct TenantSettings: Sendable, Equatable, Codable {
    /// Tenant-wide monthly limit on budget-charged spend (the outer bound), micro-USD.
    public var monthlyLimitMicros: Int64?
    /// Billing period anchor for the tenant limit.
    public var period: PeriodAnchor
    /// Global per-request limits; they win over a project's when lower.
    public var requestLimits: RequestLimits
    /// `enforce` refuses; `audit` only records what would have been refused.
    public var enforcement: Enforcement
    /// Price used for models missing from the pricing table; `nil` refuses such models.
    public var defaultPrice: TokenPrice?
    /// Longest lifetime of a virtual seat, in seconds.
    public var maxSeatDurationSeconds: Int64
    /// Store end-user identifiers only as keyed digests (on by default).
    public var hashEndUsers: Bool
    /// Idle time after which an exclusive seat lease returns to the pool, in seconds.
    public var leaseIdleSeconds: Int64
    /// Alert thresholds (percent) for the tenant limit.
    public var alertThresholds: [Int]
    /// Fee per provider-billed tool call (a web search), in micro-USD; default $10 per 1,000.
    public var toolCallPriceMicros: Int64

    public init(
        monthlyLimitMicros: Int64? = nil, period: PeriodAnchor = .init(), requestLimits: RequestLimits = .init(),
        enforcement: Enforcement = .enforce, defaultPrice: TokenPrice? = nil, maxSeatDurationSeconds: Int64 = 90 * 86_400,
        hashEndUsers: Bool = true, leaseIdleSeconds: Int64 = 600, alertThresholds: [Int] = Budget.defaultThresholds,
        toolCallPriceMicros: Int64 = TokenPrice.defaultToolCallMicros
    ) {
        self.monthlyLimitMicros = monthlyLimitMicros
        self.period = period
        self.requestLimits = requestLimits
        self.enforcement = enforcement
        self.defaultPrice = defaultPrice
        self.maxSeatDurationSeconds = maxSeatDurationSeconds
        self.hashEndUsers = hashEndUsers
        self.leaseIdleSeconds = leaseIdleSeconds
        self.alertThresholds = alertThresholds
        self.toolCallPriceMicros = toolCallPriceMicros
    }
}

/// A named group of resources inside a tenant.
public struct Pool: Sendable, Equatable {
    public var id: String
    public var tenantId: String
    public var name: String
    public var description: String
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(id: String, tenantId: String, name: String, description: String = "", createdAt: Int64, updatedAt: Int64) {
        self.id = id
        self.tenantId = tenantId
        self.name = name
        self.description = description
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}
