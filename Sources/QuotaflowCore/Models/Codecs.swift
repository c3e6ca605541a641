import Foundation

/// A type with one JSON form, shared by the admin API and the database columns.
public protocol JSONCodable: Sendable {
    func json() -> JSONValue
    init(reading reader: ObjectReader) throws
}

extension JSONCodable {
    /// Decodes a stored or received value, naming `field` in errors.
    public static func read(_ value: JSONValue, field: String) throws -> Self {
        try Self(reading: ObjectReader(value, path: field))
    }

    public static var converter: FieldConverter<Self> { { value, name in try read(value, field: name) } }

}

extension JSONValue {
    /// Builds an object, leaving out members whose value is `nil`.
    public static func compact(_ members: [(String, JSONValue?)]) -> JSONValue {
        .object(members.compactMap { key, value in value.map { (key, $0) } })
    }

    public var text: String { JSONWriter.string(self) }
}

extension PeriodAnchor: JSONCodable {
    public func json() -> JSONValue { ["day": .int(Int64(day)), "time_zone": .string(timeZone)] }

    public init(reading r: ObjectReader) throws {
        try r.rejectUnknown(["day", "time_zone"])
        let day = try r.optional("day", Field.int(1...28)) ?? 1
        let zone = try r.optional("time_zone", Field.string(maxLength: 64)) ?? "UTC"
        guard TimeZone(identifier: zone) != nil else {
            throw FieldError(r.fieldName("time_zone"), "must be an IANA time zone such as UTC or Europe/Berlin")
        }
        self.init(day: Int(day), timeZone: zone)
    }
}

extension TokenPrice: JSONCodable {
    public func json() -> JSONValue {
        [
            "input_per_mtok_micros": .int(inputPerMTok), "output_per_mtok_micros": .int(outputPerMTok),
            "cached_input_per_mtok_micros": .int(cachedInputPerMTok), "cache_write_per_mtok_micros": .int(cacheWritePerMTok),
            "cache_write_1h_per_mtok_micros": .int(cacheWrite1hPerMTok),
        ]
    }

    public init(reading r: ObjectReader) throws {
        try r.rejectUnknown([
            "input_per_mtok_micros", "output_per_mtok_micros", "cached_input_per_mtok_micros", "cache_write_per_mtok_micros",
            "cache_write_1h_per_mtok_micros",
        ])
        let limit = Field.int(0...10_000_000_000)
        self.init(
            inputPerMTok: try r.required("input_per_mtok_micros", limit), outputPerMTok: try r.required("output_per_mtok_micros", limit),
            cachedInputPerMTok: try r.optional("cached_input_per_mtok_micros", limit),
            cacheWritePerMTok: try r.optional("cache_write_per_mtok_micros", limit),
            cacheWrite1hPerMTok: try r.optional("cache_write_1h_per_mtok_micros", limit))
    }
}

extension RequestLimits: JSONCodable {
    public func json() -> JSONValue {
        .compact([
            ("max_output_tokens", maxOutputTokens.map(JSONValue.int)), ("max_input_tokens", maxInputTokens.map(JSONValue.int)),
            ("max_cost_micros", maxCostMicros.map(JSONValue.int)),
        ])
    }

    public init(reading r: ObjectReader) throws {
        try r.rejectUnknown(["max_output_tokens", "max_input_tokens", "max_cost_micros"])
        self.init(
            maxOutputTokens: try r.optional("max_output_tokens", Field.positiveCount),
            maxInputTokens: try r.optional("max_input_tokens", Field.positiveCount),
            maxCostMicros: try r.optional("max_cost_micros", Field.micros))
    }
}

extension RateLimits: JSONCodable {
    public func json() -> JSONValue {
        .compact([
            ("rpm", rpm.map(JSONValue.int)), ("rpm_per_key", rpmPerKey.map(JSONValue.int)),
            ("rpm_per_user", rpmPerUser.map(JSONValue.int)), ("tpm", tpm.map(JSONValue.int)),
        ])
    }

    public init(reading r: ObjectReader) throws {
        try r.rejectUnknown(["rpm", "rpm_per_key", "rpm_per_user", "tpm"])
        self.init(
            rpm: try r.optional("rpm", Field.positiveCount), rpmPerKey: try r.optional("rpm_per_key", Field.positiveCount),
            rpmPerUser: try r.optional("rpm_per_user", Field.positiveCount), tpm: try r.optional("tpm", Field.positiveCount))
    }
}

extension FallbackPolicy: JSONCodable {
    public func json() -> JSONValue {
        .compact([
            ("model", .string(model)), ("max_output_tokens", maxOutputTokens.map(JSONValue.int)), ("cap_micros", .int(capMicros)),
        ])
    }

    public init(reading r: ObjectReader) throws {
        try r.rejectUnknown(["model", "max_output_tokens", "cap_micros"])
        let model = try r.required("model", Field.string(maxLength: 200))
        guard ModelPattern.isValid(model), !model.contains("*") else {
            throw FieldError(r.fieldName("model"), "must be an exact model name")
        }
        self.init(
            model: model, maxOutputTokens: try r.optional("max_output_tokens", Field.positiveCount),
            capMicros: try r.required("cap_micros", Field.micros))
    }
}

enum Thresholds {
    static let converter: FieldConverter<[Int]> = { value, name in
        let list = try Field.array(maxCount: 10, Field.int(1...1000))(value, name)
        return Array(Set(list.map { Int($0) })).sorted()
    }
}

extension Budget: JSONCodable {
    public func json() -> JSONValue {
        .compact([
            ("monthly_cap_micros", monthlyCapMicros.map(JSONValue.int)), ("period", period.json()),
            ("rollover_percent", .int(Int64(rolloverPercent))), ("overage_policy", .string(overagePolicy.rawValue)),
            ("fallback", fallback?.json()), ("alert_thresholds", .array(alertThresholds.map { .int(Int64($0)) })),
        ])
    }

    public init(reading r: ObjectReader) throws {
        try r.rejectUnknown(["monthly_cap_micros", "period", "rollover_percent", "overage_policy", "fallback", "alert_thresholds"])
        let policy = try r.optional("overage_policy", Field.enumeration(OveragePolicy.self)) ?? .reject
        let fallback = try r.optional("fallback", FallbackPolicy.converter)
        if policy == .fallbackModel && fallback == nil {
            throw FieldError(r.fieldName("fallback"), "is required when overage_policy is fallback_model")
        }
        self.init(
            monthlyCapMicros: try r.optional("monthly_cap_micros", Field.micros),
            period: try r.optional("period", PeriodAnchor.converter) ?? .init(),
            rolloverPercent: Int(try r.optional("rollover_percent", Field.int(0...100)) ?? 0), overagePolicy: policy, fallback: fallback,
            alertThresholds: try r.optional("alert_thresholds", Thresholds.converter) ?? Budget.defaultThresholds)
    }
}

extension TenantSettings: JSONCodable {
    public func json() -> JSONValue {
        .compact([
            ("monthly_limit_micros", monthlyLimitMicros.map(JSONValue.int)), ("period", period.json()),
            ("request_limits", requestLimits.json()), ("enforcement", .string(enforcement.rawValue)),
            ("default_price", defaultPrice?.json()), ("max_seat_duration_seconds", .int(maxSeatDurationSeconds)),
            ("hash_end_users", .bool(hashEndUsers)), ("lease_idle_seconds", .int(leaseIdleSeconds)),
            ("alert_thresholds", .array(alertThresholds.map { .int(Int64($0)) })), ("tool_call_price_micros", .int(toolCallPriceMicros)),
        ])
    }

    public init(reading r: ObjectReader) throws {
        try r.rejectUnknown([
            "monthly_limit_micros", "period", "request_limits", "enforcement", "default_price", "max_seat_duration_seconds",
            "hash_end_users", "lease_idle_seconds", "alert_thresholds", "tool_call_price_micros",
        ])
        self.init(
            monthlyLimitMicros: try r.optional("monthly_limit_micros", Field.micros),
            period: try r.optional("period", PeriodAnchor.converter) ?? .init(),
            requestLimits: try r.optional("request_limits", RequestLimits.converter) ?? .init(),
            enforcement: try r.optional("enforcement", Field.enumeration(Enforcement.self)) ?? .enforce,
            defaultPrice: try r.optional("default_price", TokenPrice.converter),
            maxSeatDurationSeconds: try r.optional("max_seat_duration_seconds", Field.int(60...(3650 * 86_400))) ?? 90 * 86_400,
            hashEndUsers: try r.optional("hash_end_users", Field.bool) ?? true,
            leaseIdleSeconds: try r.optional("lease_idle_seconds", Field.int(1...86_400)) ?? 600,
            alertThresholds: try r.optional("alert_thresholds", Thresholds.converter) ?? Budget.defaultThresholds,
            toolCallPriceMicros: try r.optional("tool_call_price_micros", Field.int(0...100_000_000)) ?? TokenPrice.defaultToolCallMicros)
    }
}

extension UsageWindow: JSONCodable {
    public func json() -> JSONValue {
        .compact([
            ("requests", requests.map(JSONValue.int)), ("tokens", tokens.map(JSONValue.int)), ("window_seconds", .int(windowSeconds)),
        ])
    }

    public init(reading r: ObjectReader) throws {
        try r.rejectUnknown(["requests", "tokens", "window_seconds"])
        let requests = try r.optional("requests", Field.positiveCount)
        let tokens = try r.optional("tokens", Field.positiveCount)
        if requests == nil && tokens == nil { throw FieldError(r.path, "needs requests or tokens") }
        self.init(requests: requests, tokens: tokens, windowSeconds: try r.required("window_seconds", Field.int(1...(31 * 86_400))))
    }
}

extension ResourceLimits: JSONCodable {
    public func json() -> JSONValue {
        .compact([
            ("max_concurrency", maxConcurrency.map(JSONValue.int)), ("rpm", rpm.map(JSONValue.int)), ("tpm", tpm.map(JSONValue.int)),
            ("windows", .array(windows.map { $0.json() })), ("monthly_spend_cap_micros", monthlySpendCapMicros.map(JSONValue.int)),
        ])
    }

    public init(reading r: ObjectReader) throws {
        try r.rejectUnknown(["max_concurrency", "rpm", "tpm", "windows", "monthly_spend_cap_micros"])
        self.init(
            maxConcurrency: try r.optional("max_concurrency", Field.int(1...100_000)), rpm: try r.optional("rpm", Field.positiveCount),
            tpm: try r.optional("tpm", Field.positiveCount),
            windows: try r.optional("windows", Field.array(maxCount: 10, UsageWindow.converter)) ?? [],
            monthlySpendCapMicros: try r.optional("monthly_spend_cap_micros", Field.micros))
    }
}

extension Attestation: JSONCodable {
    public func json() -> JSONValue { ["by": .string(by), "at": .string(Timestamp.format(at)), "note": .string(note)] }

    public init(reading r: ObjectReader) throws {
        try r.rejectUnknown(["by", "at", "note"])
        self.init(
            by: try r.required("by", Field.name), at: try r.required("at", Field.timestamp),
            note: try r.optional("note", Field.text) ?? "")
    }
}

extension ProbeSettings: JSONCodable {
    public func json() -> JSONValue {
        .compact([("completion", .bool(completion)), ("model", model.map(JSONValue.string)), ("waiver", waiver?.json())])
    }

    public init(reading r: ObjectReader) throws {
        try r.rejectUnknown(["completion", "model", "waiver"])
        self.init(
            completion: try r.optional("completion", Field.bool) ?? false, model: try r.optional("model", Field.string(maxLength: 200)),
            waiver: try r.optional("waiver", Waiver.converter))
    }
}

extension Waiver: JSONCodable {
    public func json() -> JSONValue { ["by": .string(by), "note": .string(note)] }

    public init(reading r: ObjectReader) throws {
        try r.rejectUnknown(["by", "note"])
        self.init(by: try r.required("by", Field.name), note: try r.required("note", Field.string(maxLength: 2000)))
    }
}

extension CostBasis: JSONCodable {
    public func json() -> JSONValue {
        switch self {
        case .none: return ["type": "none"]
        case .flatMonthly(let fee): return ["type": "flat_monthly", "monthly_fee_micros": .int(fee)]
        case .perToken(let price):
            var members = price.json().objectMembers ?? []
            members.insert(("type", "per_token"), at: 0)
            return .object(members)
        }
    }

    public init(reading r: ObjectReader) throws {
        let type = try r.required("type", Field.string(maxLength: 20))
        switch type {
        case "none":
            try r.rejectUnknown(["type"])
            self = .none
        case "flat_monthly":
            try r.rejectUnknown(["type", "monthly_fee_micros"])
            self = .flatMonthly(feeMicros: try r.required("monthly_fee_micros", Field.micros))
        case "per_token":
            let rest = ObjectReader.init(members: r.members.filter { $0.0 != "type" }, path: r.path)
            self = .perToken(try TokenPrice(reading: rest))
        default:
            throw FieldError(r.fieldName("type"), "must be one of flat_monthly, per_token, none")
        }
    }
}

extension ObjectReader {
    public init(members: [(String, JSONValue)], path: String) {
        // Safe: built from an object's own members.
        self = try! ObjectReader(.object(members), path: path)
    }
}
