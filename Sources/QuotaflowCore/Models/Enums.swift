/// Kinds of upstream capacity a pool can hold.
public enum ResourceKind: String, Sendable, CaseIterable, Codable {
    case seat
    case apiKey = "api_key"
    case relay
    case overflow
}

/// Who runs the upstream.
public enum Provider: String, Sendable, CaseIterable, Codable {
    case openai
    case anthropic
    case gemini
    case openaiCompatible = "openai_compatible"

    /// The wire format a provider speaks unless a resource says otherwise.
    public var defaultWireFormat: WireFormat {
        switch self {
        case .anthropic: return .anthropic
        case .openai, .gemini, .openaiCompatible: return .openai
        }
    }
}

/// The HTTP dialect of a request or a resource.
public enum WireFormat: String, Sendable, CaseIterable, Codable {
    case openai
    case anthropic
}

/// The lifecycle of a resource. See DESIGN.md: manual suspend and revoke are never undone by a probe.
public enum ResourceState: String, Sendable, CaseIterable, Codable {
    case pending, verifying, active, rejected, cooling, degraded, suspended, revoked

    /// States in which the router may send traffic.
    public var isRoutable: Bool { self == .active || self == .degraded }
}

public enum TenantStatus: String, Sendable, CaseIterable, Codable {
    case active, disabled
}

public enum ProjectStatus: String, Sendable, CaseIterable, Codable {
    case active, archived
}

/// What happens when a request does not fit a budget.
public enum OveragePolicy: String, Sendable, CaseIterable, Codable {
    case reject
    case fallbackModel = "fallback_model"
    case overflow
    case approval
}

/// Whether limits refuse requests or only record what they would have done.
public enum Enforcement: String, Sendable, CaseIterable, Codable {
    case enforce, audit
}

/// How a seat is shared among holders.
public enum LeaseMode: String, Sendable, CaseIterable, Codable {
    /// One holder at a time; handed to another holder after an idle timeout (the default for seats).
    case exclusive
    /// Any holder may use it concurrently (the default for keys and relays).
    case shared
}

public enum SeatState: String, Sendable, CaseIterable, Codable {
    case active, expired, revoked
}

/// Our reason codes, carried in every refusal on the data plane.
public enum ReasonCode: String, Sendable, CaseIterable, Codable {
    case quotaExceeded = "quota_exceeded"
    case rateLimited = "rate_limited"
    case modelNotAllowed = "model_not_allowed"
    case requestTooLarge = "request_too_large"
    case keyExpired = "key_expired"
    case keyRevoked = "key_revoked"
    case invalidKey = "invalid_key"
    case noCapacity = "no_capacity"
    case approvalRequired = "approval_required"
    case upstreamError = "upstream_error"
    case invalidRequest = "invalid_request"
    case upstreamTimeout = "upstream_timeout"
    case clientClosed = "client_closed"
    case tenantDisabled = "tenant_disabled"
    case projectArchived = "project_archived"

    /// The HTTP status that goes with the code.
    public var httpStatus: Int {
        switch self {
        case .quotaExceeded, .rateLimited: return 429
        case .modelNotAllowed, .approvalRequired, .tenantDisabled, .projectArchived: return 403
        case .requestTooLarge: return 413
        case .keyExpired, .keyRevoked, .invalidKey: return 401
        case .noCapacity: return 503
        case .upstreamError: return 502
        case .upstreamTimeout: return 504
        case .invalidRequest: return 400
        case .clientClosed: return 499
        }
    }
}
