/// A workspace or cost center. Draws from pools; carries budget, limits and policies.
public struct Project: Sendable, Equatable {
    public var id: String
    public var tenantId: String
    public var name: String
    public var parentId: String?
    public var poolIds: [String]
    /// Empty means every model the pools serve.
    public var allowedModels: [String]
    public var status: ProjectStatus
    public var overflowAllowed: Bool
    public var overflowCapMicros: Int64?
    public var budget: Budget
    public var requestLimits: RequestLimits
    public var rateLimits: RateLimits
    /// `nil` inherits the tenant's enforcement mode.
    public var enforcement: Enforcement?
    /// Free-form attributes such as `cost_center`.
    public var attributes: [String: String]
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(
        id: String, tenantId: String, name: String, parentId: String? = nil, poolIds: [String] = [], allowedModels: [String] = [],
        status: ProjectStatus = .active, overflowAllowed: Bool = false, overflowCapMicros: Int64? = nil, budget: Budget = .init(),
        requestLimits: RequestLimits = .init(), rateLimits: RateLimits = .init(), enforcement: Enforcement? = nil,
        attributes: [String: String] = [:], createdAt: Int64 = 0, updatedAt: Int64 = 0
    ) {
        self.id = id
        self.tenantId = tenantId
        self.name = name
        self.parentId = parentId
        self.poolIds = poolIds
        self.allowedModels = allowedModels
        self.status = status
        self.overflowAllowed = overflowAllowed
        self.overflowCapMicros = overflowCapMicros
        self.budget = budget
        self.requestLimits = requestLimits
        self.rateLimits = rateLimits
        self.enforcement = enforcement
        self.attributes = attributes
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// When a monthly period starts: a day of the month in a time zone.
public struct PeriodAnchor: Sendable, Hashable, Codable {
    /// 1...28, so every month has the day.
    public var day: Int
    /// An IANA time zone name such as `Europe/Berlin`.
    public var timeZone: String

    public init(day: Int = 1, timeZone: String = "UTC") {
        self.day = day
        self.timeZone = timeZone
    }
}

/// The cheaper model a budget falls back to, with its own output cap and spend cap.
public struct FallbackPolicy: Sendable, Equatable, Codable {
    public var model: String
    public var maxOutputTokens: Int64?
    /// Monthly cap on spend made through the fallback.
    public var capMicros: Int64

    public init(model: String, maxOutputTokens: Int64? = nil, capMicros: Int64) {
        self.model = model
        self.maxOutputTokens = maxOutputTokens
        self.capMicros = capMicros
    }
}

/// A monthly budget.
public struct Budget: Sendable, Equatable, Codable {
    public static let defaultThresholds = [50, 75, 90, 100]

    public var monthlyCapMicros: Int64?
    public var period: PeriodAnchor
    /// Unused budget carried into the next period, at most this percent of the cap (0 = none).
    public var rolloverPercent: Int
    public var overagePolicy: OveragePolicy
    public var fallback: FallbackPolicy?
    public var alertThresholds: [Int]

    public init(
        monthlyCapMicros: Int64? = nil, period: PeriodAnchor = .init(), rolloverPercent: Int = 0, overagePolicy: OveragePolicy = .reject,
        fallback: FallbackPolicy? = nil, alertThresholds: [Int] = Budget.defaultThresholds
    ) {
        self.monthlyCapMicros = monthlyCapMicros
        self.period = period
        self.rolloverPercent = rolloverPercent
        self.overagePolicy = overagePolicy
        self.fallback = fallback
        self.alertThresholds = alertThresholds
    }
}

/// Limits on a single request.
public struct RequestLimits: Sendable, Equatable, Codable {
    public var maxOutputTokens: Int64?
    public var maxInputTokens: Int64?
    public var maxCostMicros: Int64?

    public init(maxOutputTokens: Int64? = nil, maxInputTokens: Int64? = nil, maxCostMicros: Int64? = nil) {
        self.maxOutputTokens = maxOutputTokens
        self.maxInputTokens = maxInputTokens
        self.maxCostMicros = maxCostMicros
    }

    /// The stricter of two limit sets, field by field.
    public func tightened(by other: RequestLimits) -> RequestLimits {
        func lower(_ a: Int64?, _ b: Int64?) -> Int64? {
            switch (a, b) {
            case (let x?, let y?): return min(x, y)
            case (let x?, nil): return x
            case (nil, let y): return y
            }
        }
        return RequestLimits(
            maxOutputTokens: lower(maxOutputTokens, other.maxOutputTokens),
            maxInputTokens: lower(maxInputTokens, other.maxInputTokens),
            maxCostMicros: lower(maxCostMicros, other.maxCostMicros))
    }
}

/// Rate limits of a project.
public struct RateLimits: Sendable, Equatable, Codable {
    /// Requests per minute across the project.
    public var rpm: Int64?
    /// Requests per minute for each key or seat of the project (a key's own `rpm` wins when set).
    public var rpmPerKey: Int64?
    /// Requests per minute for each end user (the OpenAI `user` field or the `x-quotaflow-user` header).
    public var rpmPerUser: Int64?
    /// Tokens per minute across the project.
    public var tpm: Int64?

    public init(rpm: Int64? = nil, rpmPerKey: Int64? = nil, rpmPerUser: Int64? = nil, tpm: Int64? = nil) {
        self.rpm = rpm
        self.rpmPerKey = rpmPerKey
        self.rpmPerUser = rpmPerUser
        self.tpm = tpm
    }
}
