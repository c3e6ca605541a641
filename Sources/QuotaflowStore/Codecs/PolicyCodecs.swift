import QuotaflowCore

// Storage decoders for the policy types kept in JSON columns. They write what the API form
// writes (`json()`), and read it back without the API's validation of input, but strictly:
// a member that must be there and is not, or has the wrong type, is an error.

extension PeriodAnchor: StoredJSON {
    public var stored: JSONValue { json() }

    public init(stored r: StoredReader) throws(StorageError) {
        self.init(day: Int(try r.required("day", Stored.int)), timeZone: try r.required("time_zone", Stored.string))
    }
}

extension TokenPrice: StoredJSON {
    public var stored: JSONValue { json() }

    public init(stored r: StoredReader) throws(StorageError) {
        self.init(
            inputPerMTok: try r.required("input_per_mtok_micros", Stored.nonNegative),
            outputPerMTok: try r.required("output_per_mtok_micros", Stored.nonNegative),
            cachedInputPerMTok: try r.required("cached_input_per_mtok_micros", Stored.nonNegative),
            cacheWritePerMTok: try r.required("cache_write_per_mtok_micros", Stored.nonNegative),
            // Added with schema 0007; earlier rows take the provider rule (2× input).
            cacheWrite1hPerMTok: try r.optional("cache_write_1h_per_mtok_micros", Stored.nonNegative))
    }
}

extension RequestLimits: StoredJSON {
    public var stored: JSONValue { json() }

    public init(stored r: StoredReader) throws(StorageError) {
        self.init(
            maxOutputTokens: try r.optional("max_output_tokens", Stored.nonNegative),
            maxInputTokens: try r.optional("max_input_tokens", Stored.nonNegative),
            maxCostMicros: try r.optional("max_cost_micros", Stored.nonNegative))
    }
}

extension RateLimits: StoredJSON {
    public var stored: JSONValue { json() }

    public init(stored r: StoredReader) throws(StorageError) {
        self.init(
            rpm: try r.optional("rpm", Stored.nonNegative), rpmPerKey: try r.optional("rpm_per_key", Stored.nonNegative),
            rpmPerUser: try r.optional("rpm_per_user", Stored.nonNegative), tpm: try r.optional("tpm", Stored.nonNegative))
    }
}

extension FallbackPolicy: StoredJSON {
    public var stored: JSONValue { json() }

    public init(stored r: StoredReader) throws(StorageError) {
        self.init(
            model: try r.required("model", Stored.string), maxOutputTokens: try r.optional("max_output_tokens", Stored.nonNegative),
            capMicros: try r.required("cap_micros", Stored.nonNegative))
    }
}

extension Budget: StoredJSON {
    public var stored: JSONValue { json() }

    public init(stored r: StoredReader) throws(StorageError) {
        let policy = try r.required("overage_policy", Stored.enumeration(OveragePolicy.self))
        let fallback = try r.optional("fallback", Stored.nested(FallbackPolicy.self))
        if policy == .fallbackModel && fallback == nil { throw StorageError(r.name("fallback"), "is missing for the fallback_model policy") }
        self.init(
            monthlyCapMicros: try r.optional("monthly_cap_micros", Stored.nonNegative),
            period: try r.required("period", Stored.nested(PeriodAnchor.self)),
            rolloverPercent: Int(try r.required("rollover_percent", Stored.nonNegative)), overagePolicy: policy, fallback: fallback,
            alertThresholds: try r.required("alert_thresholds", Stored.ints))
    }
}

extension TenantSettings: StoredJSON {
    public var stored: JSONValue { json() }

    public init(stored r: StoredReader) throws(StorageError) {
        self.init(
            monthlyLimitMicros: try r.optional("monthly_limit_micros", Stored.nonNegative),
            period: try r.required("period", Stored.nested(PeriodAnchor.self)),
            requestLimits: try r.required("request_limits", Stored.nested(RequestLimits.self)),
            enforcement: try r.required("enforcement", Stored.enumeration(Enforcement.self)),
            defaultPrice: try r.optional("default_price", Stored.nested(TokenPrice.self)),
            maxSeatDurationSeconds: try r.required("max_seat_duration_seconds", Stored.nonNegative),
            hashEndUsers: try r.required("hash_end_users", Stored.bool), leaseIdleSeconds: try r.required("lease_idle_seconds", Stored.nonNegative),
            alertThresholds: try r.required("alert_thresholds", Stored.ints),
            toolCallPriceMicros: try r.added("tool_call_price_micros", missing: TokenPrice.defaultToolCallMicros, Stored.nonNegative))
    }
}

/// The policy part of a project, stored as one JSON column.
struct ProjectPolicy: StoredJSON {
    var overflowAllowed: Bool
    var overflowCapMicros: Int64?
    var budget: Budget
    var requestLimits: RequestLimits
    var rateLimits: RateLimits
    var enforcement: Enforcement?

    init(_ p: Project) {
        overflowAllowed = p.overflowAllowed
        overflowCapMicros = p.overflowCapMicros
        budget = p.budget
        requestLimits = p.requestLimits
        rateLimits = p.rateLimits
        enforcement = p.enforcement
    }

    var stored: JSONValue {
        .compact([
            ("overflow_allowed", .bool(overflowAllowed)), ("overflow_cap_micros", overflowCapMicros.map(JSONValue.int)),
            ("budget", budget.stored), ("request_limits", requestLimits.stored), ("rate_limits", rateLimits.stored),
            ("enforcement", enforcement.map { .string($0.rawValue) }),
        ])
    }

    init(stored r: StoredReader) throws(StorageError) {
        overflowAllowed = try r.required("overflow_allowed", Stored.bool)
        overflowCapMicros = try r.optional("overflow_cap_micros", Stored.nonNegative)
        budget = try r.required("budget", Stored.nested(Budget.self))
        requestLimits = try r.required("request_limits", Stored.nested(RequestLimits.self))
        rateLimits = try r.required("rate_limits", Stored.nested(RateLimits.self))
        enforcement = try r.optional("enforcement", Stored.enumeration(Enforcement.self))
    }
}
