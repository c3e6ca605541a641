/// What the reports are computed from: aggregates the store reads from the ledger and the audit
/// log. The calculators beside this file are pure functions of these values.

/// Dimensions the usage report can group by.
public enum UsageDimension: String, Sendable, CaseIterable {
    case project, key, holder, provider, model, resource, day, month
}

/// One group of the usage report.
public struct UsageGroup: Sendable, Equatable {
    public var keys: [String?]
    public var requests: Int64
    public var succeeded: Int64
    public var tokensIn: Int64
    public var tokensOut: Int64
    public var tokensCached: Int64
    public var costMicros: Int64
    public var upstreamCostMicros: Int64
    public var overflowChargeMicros: Int64

    public init(
        keys: [String?], requests: Int64, succeeded: Int64, tokensIn: Int64, tokensOut: Int64, tokensCached: Int64, costMicros: Int64,
        upstreamCostMicros: Int64, overflowChargeMicros: Int64
    ) {
        self.keys = keys
        self.requests = requests
        self.succeeded = succeeded
        self.tokensIn = tokensIn
        self.tokensOut = tokensOut
        self.tokensCached = tokensCached
        self.costMicros = costMicros
        self.upstreamCostMicros = upstreamCostMicros
        self.overflowChargeMicros = overflowChargeMicros
    }
}

/// One request served by a resource, for utilization.
public struct ResourceUse: Sendable, Equatable {
    public var resourceId: String
    public var startedAt: Int64
    public var finishedAt: Int64
    public var tokens: Int64
    /// The seat or key, and the end user within it: a lease holder.
    public var holder: String

    public init(resourceId: String, startedAt: Int64, finishedAt: Int64, tokens: Int64, holder: String) {
        self.resourceId = resourceId
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.tokens = tokens
        self.holder = holder
    }
}

/// A resource's state change, from the audit log.
public struct StateTransition: Sendable, Equatable {
    public var resourceId: String
    public var at: Int64
    public var from: String
    public var to: String

    public init(resourceId: String, at: Int64, from: String, to: String) {
        self.resourceId = resourceId
        self.at = at
        self.from = from
        self.to = to
    }
}

/// Requests a resource served in one minute.
public struct MinuteCount: Sendable, Equatable {
    public var resourceId: String
    public var minute: Int64
    public var requests: Int64

    public init(resourceId: String, minute: Int64, requests: Int64) {
        self.resourceId = resourceId
        self.minute = minute
        self.requests = requests
    }
}
