/// One unit of upstream capacity.
public struct Resource: Sendable, Equatable {
    public var id: String
    public var tenantId: String
    public var poolId: String
    public var name: String
    public var kind: ResourceKind
    public var provider: Provider
    public var wireFormat: WireFormat
    /// The API families it serves (each of the resource's wire format).
    public var families: [ApiFamily]
    public var baseURL: String
    /// Last four characters of the credential, for people to recognise it.
    public var credentialHint: String
    /// Exact model names or simple wildcards (`claude-sonnet-*`).
    public var models: [String]
    public var owner: String
    public var attestation: Attestation?
    public var allowedUse: String
    public var costBasis: CostBasis
    public var limits: ResourceLimits
    public var leaseMode: LeaseMode
    public var plan: SeatPlan
    /// Set when the credential is an OAuth access token the gateway refreshes.
    public var oauth: OAuthSettings?
    /// Region, project, API version and model map of a cloud resource.
    public var cloud: CloudSettings?
    public var probe: ProbeSettings
    public var state: ResourceState
    public var stateReason: String
    public var stateChangedAt: Int64
    /// Set while `cooling`: when the upstream said its limit resets.
    public var coolingUntil: Int64?
    /// A person suspended it; probes never lift this.
    public var manualHold: Bool
    /// For `overflow` resources: the operator's offer and the tenant's monthly credit cap.
    public var offerId: String?
    public var creditCapMicros: Int64?
    public var createdAt: Int64
    public var updatedAt: Int64
    /// The operator set this resource's URL: the tenant egress policy does not apply to it.
    public var egressExempt: Bool

    public init(
        id: String, tenantId: String, poolId: String, name: String, kind: ResourceKind, provider: Provider,
        wireFormat: WireFormat, families: [ApiFamily]? = nil, baseURL: String, credentialHint: String = "", models: [String], owner: String = "",
        attestation: Attestation? = nil, allowedUse: String = "", costBasis: CostBasis = .none, limits: ResourceLimits = .init(),
        leaseMode: LeaseMode? = nil, plan: SeatPlan? = nil, oauth: OAuthSettings? = nil, cloud: CloudSettings? = nil, probe: ProbeSettings = .init(),
        state: ResourceState = .pending, stateReason: String = "",
        stateChangedAt: Int64 = 0, coolingUntil: Int64? = nil, manualHold: Bool = false, offerId: String? = nil,
        creditCapMicros: Int64? = nil, createdAt: Int64 = 0, updatedAt: Int64 = 0, egressExempt: Bool = false
    ) {
        self.id = id
        self.tenantId = tenantId
        self.poolId = poolId
        self.name = name
        self.kind = kind
        self.provider = provider
        self.wireFormat = wireFormat
        self.families = families ?? ApiFamily.defaults(provider: provider, wireFormat: wireFormat)
        self.baseURL = baseURL
        self.credentialHint = credentialHint
        self.models = models
        self.owner = owner
        self.attestation = attestation
        self.allowedUse = allowedUse
        self.costBasis = costBasis
        self.limits = limits
        let plan = plan ?? SeatPlan.defaultFor(kind)
        self.plan = plan
        self.leaseMode = leaseMode ?? plan.defaultMode(kind)
        self.oauth = oauth
        self.cloud = cloud
        self.probe = probe
        self.state = state
        self.stateReason = stateReason
        self.stateChangedAt = stateChangedAt
        self.coolingUntil = coolingUntil
        self.manualHold = manualHold
        self.offerId = offerId
        self.creditCapMicros = creditCapMicros
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.egressExempt = egressExempt
    }

    /// Whether this resource serves `model` (exact names or `*` wildcards).
    public func serves(model: String) -> Bool {
        models.contains { ModelPattern.matches(pattern: $0, model) }
    }

    public func serves(family: ApiFamily) -> Bool { families.contains(family) }

    /// Whether every `anthropic-beta` feature asked for is available here.
    public func accepts(betas: [String]) -> Bool {
        guard !betas.isEmpty, let accepted = CloudSettings.acceptedBetas(provider, cloud) else { return true }
        return betas.allSatisfy(accepted.contains)
    }
}

/// Who confirmed permission to connect a resource, and when.
public struct Attestation: Sendable, Equatable, Codable {
    public var by: String
    public var at: Int64
    public var note: String

    public init(by: String, at: Int64, note: String = "") {
        self.by = by
        self.at = at
        self.note = note
    }
}

/// What a resource costs the company.
public enum CostBasis: Sendable, Equatable {
    /// Not stated: metered resources fall back to the tenant pricing table.
    case none
    /// A subscription seat: a flat monthly fee, no marginal cost per token.
    case flatMonthly(feeMicros: Int64)
    /// Metered keys and relays.
    case perToken(TokenPrice)

    /// Marginal cost of one request's usage on this resource; `nil` means "use the pricing table".
    public func marginalCost(_ usage: TokenUsage) -> Int64? {
        switch self {
        case .none: return nil
        case .flatMonthly: return 0
        case .perToken(let price): return Money.cost(usage, at: price)
        }
    }

    /// Ordering key for ties: a flat-fee seat (0) before a metered key.
    public var marginalRank: Int64 {
        switch self {
        case .flatMonthly: return 0
        case .none: return Int64.max / 2
        case .perToken(let p): return p.inputPerMTok + p.outputPerMTok
        }
    }
}

/// A usage window such as "N requests per 5 h", as providers impose on subscription seats.
public struct UsageWindow: Sendable, Equatable, Codable {
    public var requests: Int64?
    public var tokens: Int64?
    public var windowSeconds: Int64

    public init(requests: Int64? = nil, tokens: Int64? = nil, windowSeconds: Int64) {
        self.requests = requests
        self.tokens = tokens
        self.windowSeconds = windowSeconds
    }
}

/// Limits of one resource. `nil` means "no limit of this kind".
public struct ResourceLimits: Sendable, Equatable, Codable {
    public var maxConcurrency: Int64?
    public var rpm: Int64?
    public var tpm: Int64?
    public var windows: [UsageWindow]
    public var monthlySpendCapMicros: Int64?

    public init(maxConcurrency: Int64? = nil, rpm: Int64? = nil, tpm: Int64? = nil, windows: [UsageWindow] = [], monthlySpendCapMicros: Int64? = nil)
    {
        self.maxConcurrency = maxConcurrency
        self.rpm = rpm
        self.tpm = tpm
        self.windows = windows
        self.monthlySpendCapMicros = monthlySpendCapMicros
    }
}

/// How the verifier probes a resource.
public struct ProbeSettings: Sendable, Equatable {
    /// Send a 1-token completion as part of the probe. Off by default: it costs money.
    public var completion: Bool
    /// Model for the completion probe; the first exact model name otherwise.
    public var model: String?
    /// An admin's decision to admit a relay that has no models list without a completion probe.
    /// Without either, such a relay is not admitted: nothing would prove its credential and route.
    public var waiver: Waiver?

    public init(completion: Bool = false, model: String? = nil, waiver: Waiver? = nil) {
        self.completion = completion
        self.model = model
        self.waiver = waiver
    }
}

/// Who decided to admit a resource without proof of its route, and why (kept in the audit log).
public struct Waiver: Sendable, Equatable {
    public var by: String
    public var note: String

    public init(by: String, note: String) {
        self.by = by
        self.note = note
    }
}

/// Operator-owned metered capacity that tenants may opt into.
public struct OverflowOffer: Sendable, Equatable {
    public var id: String
    public var name: String
    public var provider: Provider
    public var wireFormat: WireFormat
    public var baseURL: String
    public var models: [String]
    public var price: TokenPrice
    public var credentialHint: String
    public var active: Bool
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(
        id: String, name: String, provider: Provider, wireFormat: WireFormat, baseURL: String, models: [String], price: TokenPrice,
        credentialHint: String, active: Bool = true, createdAt: Int64, updatedAt: Int64
    ) {
        self.id = id
        self.name = name
        self.provider = provider
        self.wireFormat = wireFormat
        self.baseURL = baseURL
        self.models = models
        self.price = price
        self.credentialHint = credentialHint
        self.active = active
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}
