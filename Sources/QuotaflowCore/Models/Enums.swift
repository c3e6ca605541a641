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
    /// Claude on Amazon Bedrock (InvokeModel, SigV4, event-stream answers).
    case bedrock
    /// Claude and Gemini on Google Vertex AI (a service account's tokens).
    case vertex
    /// Azure OpenAI deployments (an api-key or Entra tokens).
    case azure

    /// The wire format a provider speaks unless a resource says otherwise.
    public var defaultWireFormat: WireFormat {
        switch self {
        case .anthropic, .bedrock, .vertex: return .anthropic
        case .gemini: return .gemini
        case .openai, .openaiCompatible, .azure: return .openai
        }
    }

    /// Cloud platforms: requests are adapted to the platform's own paths, bodies and signing.
    public var isCloud: Bool { self == .bedrock || self == .vertex || self == .azure }
}

/// How an upstream is addressed and authenticated: OpenAI's (`Authorization: Bearer`, a base URL
/// ending in `/v1`), Anthropic's (`x-api-key`, the host's root) or Google's Generative Language API
/// (`x-goog-api-key`, the host's root, `/v1beta/models/...`).
public enum WireFormat: String, Sendable, CaseIterable, Codable {
    case openai
    case anthropic
    case gemini
}

/// An API family: what a request speaks, and what a resource serves.
public enum ApiFamily: String, Sendable, CaseIterable, Codable {
    /// OpenAI Chat Completions.
    case chat
    /// OpenAI Responses (Codex).
    case responses
    /// OpenAI embeddings.
    case embeddings
    /// Anthropic Messages, with token counting.
    case messages
    /// Google's Generative Language API (Gemini CLI): generate, stream, count tokens.
    case gemini

    /// The wire format a resource must have to serve this family.
    public var wireFormat: WireFormat {
        switch self {
        case .chat, .responses, .embeddings: return .openai
        case .messages: return .anthropic
        case .gemini: return .gemini
        }
    }

    /// What a resource serves when it does not say: everything its wire format carries for OpenAI
    /// itself, and Chat Completions only for other OpenAI-format upstreams (relays, compatibility
    /// endpoints), which often lack the rest.
    public static func defaults(provider: Provider, wireFormat: WireFormat) -> [ApiFamily] {
        switch wireFormat {
        case .anthropic: return [.messages]
        case .gemini: return [.gemini]
        case .openai: return provider == .openai || provider == .azure ? [.chat, .responses, .embeddings] : [.chat]
        }
    }
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

/// How a resource's capacity is shared among holders. The admin attests that the plan's terms
/// allow the mode; a personal plan is only ever passed through for its owner.
public enum LeaseMode: String, Sendable, CaseIterable, Codable {
    /// Organisation credentials meant for shared use (API keys, Team/Enterprise plans whose terms
    /// allow gateway use, cloud credentials): any holder, concurrently. Stored as `shared` before 0008.
    case pooled
    /// One holder at a time; handed to another holder after an idle timeout. Only for plans whose
    /// terms allow reassignment.
    case exclusive
    /// Quotaflow stores no credential: the holder's client sends its own subscription token, which
    /// is forwarded unchanged with the client's own headers, for that holder only.
    case passthrough
}

/// What kind of plan a resource's credential belongs to; it decides which lease modes are allowed.
public enum PlanKind: String, Sendable, CaseIterable, Codable {
    /// Metered API access (keys, relays, cloud credits).
    case api
    /// A plan bought by the organisation for its members (Team, Enterprise, Business).
    case organization
    /// A person's own consumer plan (Pro, Max, Plus): passthrough for its owner only.
    case personal
}

/// A resource's plan: its kind, a name people recognise, and a size weight for reset-aware routing
/// (a Max 20x seat holds twenty times a Pro seat's allowance).
public struct SeatPlan: Sendable, Equatable {
    public var kind: PlanKind
    public var name: String
    public var weight: Double

    public init(kind: PlanKind, name: String = "", weight: Double = 1) {
        self.kind = kind
        self.name = name
        self.weight = weight
    }

    /// The default plan of a resource kind: seats are organisation plans, the rest metered API access.
    public static func defaultFor(_ kind: ResourceKind) -> SeatPlan { SeatPlan(kind: kind == .seat ? .organization : .api) }

    /// The lease mode a plan gets when none is said.
    public func defaultMode(_ kind: ResourceKind) -> LeaseMode {
        switch self.kind {
        case .personal: return .passthrough
        case .organization: return kind == .seat ? .exclusive : .pooled
        case .api: return .pooled
        }
    }
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
    /// A stored response this key did not create, or that does not exist.
    case responseNotFound = "response_not_found"
    /// The resource that holds a stored response has left the pool (or the key's project).
    case responseUnavailable = "response_unavailable"

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
        case .responseNotFound: return 404
        case .responseUnavailable: return 409
        }
    }
}
