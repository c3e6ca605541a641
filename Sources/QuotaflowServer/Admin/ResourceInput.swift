import QuotaflowCore

/// Reading a resource's writable fields, for create and for update (a merge patch over them).
extension ResourcesController {
    static func defaultBaseURL(_ provider: Provider, _ wireFormat: WireFormat, cloud: CloudSettings? = nil) -> String? {
        switch (provider, wireFormat) {
        case (.bedrock, _): return cloud.map { "https://bedrock-runtime.\($0.region).amazonaws.com" }
        case (.vertex, _):
            guard let c = cloud else { return nil }
            switch c.region {
            case "global": return "https://aiplatform.googleapis.com"
            case "us", "eu": return "https://aiplatform.\(c.region).rep.googleapis.com"
            default: return "https://\(c.region)-aiplatform.googleapis.com"
            }
        case (.azure, _): return nil
        case (.openai, _): return "https://api.openai.com/v1"
        case (.anthropic, _): return "https://api.anthropic.com"
        case (.gemini, .openai): return "https://generativelanguage.googleapis.com/v1beta/openai"
        case (.gemini, _): return "https://generativelanguage.googleapis.com"
        case (.openaiCompatible, _): return nil
        }
    }

    static let familiesField = Field.array(maxCount: ApiFamily.allCases.count) { value, name in
        try Field.enumeration(ApiFamily.self)(value, name)
    }

    /// The families a resource declares, each of its wire format; its provider's defaults when unsaid.
    static func families(_ b: ObjectReader, provider: Provider, wireFormat: WireFormat) throws -> [ApiFamily] {
        guard let declared = try b.optional("families", familiesField) else { return ApiFamily.defaults(provider: provider, wireFormat: wireFormat) }
        if declared.isEmpty { throw FieldError("families", "must name at least one API family") }
        for f in declared where f.wireFormat != wireFormat {
            throw FieldError("families", "'\(f.rawValue)' is served over the \(f.wireFormat.rawValue) wire format, not \(wireFormat.rawValue)")
        }
        var seen: [ApiFamily] = []
        for f in declared where !seen.contains(f) { seen.append(f) }
        return seen
    }

    static let credentialField = Field.string(maxLength: 4096)

    /// Reads the writable fields onto `r`. `kind` and the credential are set by the caller.
    func read(_ b: ObjectReader, into r: inout Resource, tenantId: String, pools: [Pool], offer: OverflowOffer?) throws {
        let poolId = try b.required("pool_id", Field.string(maxLength: 64))
        guard pools.contains(where: { $0.id == poolId }) else { throw FieldError("pool_id", "no pool '\(poolId)' in this tenant") }
        r.poolId = poolId
        r.name = try b.required("name", Field.name)
        if r.kind == .overflow {
            guard let offer else { throw FieldError("offer_id", "is required for overflow resources") }
            for field in ["provider", "wire_format", "families", "base_url", "models", "cost_basis"]
            where b[field] != nil && b[field]?.isNull == false {
                throw FieldError(field, "comes from the overflow offer and cannot be set on an overflow resource")
            }
            r.provider = offer.provider
            r.wireFormat = offer.wireFormat
            r.families = ApiFamily.defaults(provider: offer.provider, wireFormat: offer.wireFormat)
            r.baseURL = offer.baseURL
            r.models = offer.models
            r.costBasis = .perToken(offer.price)
            r.creditCapMicros = try b.required("credit_cap_micros", Field.micros)
        } else {
            if b["credit_cap_micros"].map({ !$0.isNull }) ?? false {
                throw FieldError("credit_cap_micros", "applies to overflow resources only")
            }
            r.provider = try b.required("provider", Field.enumeration(Provider.self))
            r.wireFormat = try b.optional("wire_format", Field.enumeration(WireFormat.self)) ?? r.provider.defaultWireFormat
            r.families = try Self.families(b, provider: r.provider, wireFormat: r.wireFormat)
            r.cloud = try Self.cloud(b, provider: r.provider)
            guard let url = try b.optional("base_url", Field.url) ?? Self.defaultBaseURL(r.provider, r.wireFormat, cloud: r.cloud) else {
                throw FieldError("base_url", "is required for \(r.provider.rawValue) resources (an Azure resource's endpoint)")
            }
            r.baseURL = url
            r.models = try b.required("models", Field.modelPatterns)
            if r.models.isEmpty { throw FieldError("models", "must list at least one model or pattern") }
            r.costBasis = try b.optional("cost_basis", CostBasis.converter) ?? .none
            switch (r.kind, r.costBasis) {
            case (.seat, .perToken): throw FieldError("cost_basis", "a seat has a flat_monthly cost basis")
            case (.apiKey, .flatMonthly), (.relay, .flatMonthly): throw FieldError("cost_basis", "keys and relays have a per_token cost basis")
            default: break
            }
        }
        r.owner = try b.optional("owner", Field.string(maxLength: 200, allowEmpty: true)) ?? ""
        r.attestation = try b.optional("attestation", Attestation.converter)
        r.allowedUse = try b.optional("allowed_use", Field.text) ?? ""
        r.limits = try b.optional("limits", ResourceLimits.converter) ?? .init()
        r.plan = try b.optional("plan", SeatPlan.converter) ?? SeatPlan.defaultFor(r.kind)
        r.leaseMode = try Self.leaseMode(b) ?? r.plan.defaultMode(r.kind)
        r.probe = try b.optional("probe", ProbeSettings.converter) ?? .init()
    }

    /// A cloud resource's settings: Bedrock needs a region, Vertex a project and a region, Azure an
    /// `api-version` (2024-10-21 unless said). Other providers take none.
    static func cloud(_ b: ObjectReader, provider: Provider) throws -> CloudSettings? {
        let given = try b.optional("cloud", CloudSettings.converter)
        guard provider.isCloud else {
            if given != nil { throw FieldError("cloud", "applies to bedrock, vertex and azure resources only") }
            return nil
        }
        var c = given ?? CloudSettings()
        switch provider {
        case .bedrock where c.region.isEmpty: throw FieldError("cloud.region", "is required for Bedrock resources (us-east-1, for example)")
        case .vertex where c.region.isEmpty || c.project.isEmpty:
            throw FieldError(c.project.isEmpty ? "cloud.project" : "cloud.region", "is required for Vertex AI resources")
        case .azure where c.apiVersion.isEmpty: c.apiVersion = "2024-10-21"
        default: break
        }
        return c
    }

    /// The lease mode; `shared`, its name before schema 0008, is read as `pooled`.
    static func leaseMode(_ b: ObjectReader) throws -> LeaseMode? {
        if case .string("shared") = b["lease_mode"] { return .pooled }
        return try b.optional("lease_mode", Field.enumeration(LeaseMode.self))
    }

    /// A plan's terms decide how it may be shared, and the admin attests that they allow the mode.
    static func checkTerms(_ r: Resource) throws {
        switch (r.plan.kind, r.leaseMode) {
        case (.personal, .pooled), (.personal, .exclusive):
            throw FieldError(
                "lease_mode",
                "a personal plan may only be passed through for its owner (lease_mode passthrough): its terms do not allow sharing or "
                    + "handing it to another person")
        case (_, .exclusive) where r.attestation == nil:
            throw FieldError("attestation", "an exclusive seat is handed from holder to holder: attest that the plan's terms allow reassignment")
        case (.organization, .pooled) where r.attestation == nil:
            throw FieldError("attestation", "attest that the organisation plan's terms allow use through a gateway")
        case (_, .passthrough):
            guard r.kind == .seat else { throw FieldError("lease_mode", "passthrough applies to subscription seats (kind seat)") }
            if case .perToken = r.costBasis { throw FieldError("cost_basis", "a passthrough seat has a flat_monthly cost basis (its plan's fee)") }
            if r.oauth != nil { throw FieldError("oauth", "a passthrough seat stores no credential: the holder's client sends its own") }
        default:
            break
        }
    }
}

/// The `oauth` member of a new resource: its settings, and the secrets that are written once and
/// never shown again.
struct OAuthSecrets: JSONCodable {
    var settings: OAuthSettings
    var clientSecret: String?
    var refreshToken: String?

    func json() -> JSONValue { settings.json() }

    init(settings: OAuthSettings, clientSecret: String?, refreshToken: String?) {
        self.settings = settings
        self.clientSecret = clientSecret
        self.refreshToken = refreshToken
    }

    init(reading r: ObjectReader) throws {
        settings = try OAuthSettings(reading: r)
        clientSecret = try r.optional("client_secret", Field.string(maxLength: 4096))
        refreshToken = try r.optional("refresh_token", Field.string(maxLength: 8192))
        switch settings.grant {
        case .refreshToken where refreshToken == nil:
            throw FieldError(r.fieldName("refresh_token"), "is required for the refresh_token grant")
        case .clientCredentials where clientSecret == nil:
            throw FieldError(r.fieldName("client_secret"), "is required for the client_credentials grant")
        default:
            break
        }
    }
}
