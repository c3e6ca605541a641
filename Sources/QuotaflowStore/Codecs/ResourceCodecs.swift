import QuotaflowCore

// Storage decoders for the resource settings kept in JSON columns (see PolicyCodecs.swift).

extension UsageWindow: StoredJSON {
    public var stored: JSONValue { json() }

    public init(stored r: StoredReader) throws(StorageError) {
        let requests = try r.optional("requests", Stored.nonNegative)
        let tokens = try r.optional("tokens", Stored.nonNegative)
        if requests == nil && tokens == nil { throw StorageError(r.path, "needs requests or tokens") }
        self.init(requests: requests, tokens: tokens, windowSeconds: try r.required("window_seconds", Stored.nonNegative))
    }
}

extension ResourceLimits: StoredJSON {
    public var stored: JSONValue { json() }

    public init(stored r: StoredReader) throws(StorageError) {
        self.init(
            maxConcurrency: try r.optional("max_concurrency", Stored.nonNegative), rpm: try r.optional("rpm", Stored.nonNegative),
            tpm: try r.optional("tpm", Stored.nonNegative), windows: try r.required("windows", Stored.list(UsageWindow.self)),
            monthlySpendCapMicros: try r.optional("monthly_spend_cap_micros", Stored.nonNegative))
    }
}

extension Attestation: StoredJSON {
    public var stored: JSONValue { json() }

    public init(stored r: StoredReader) throws(StorageError) {
        let at = try r.required("at", Stored.string)
        guard let ms = Timestamp.parse(at) else { throw StorageError(r.name("at"), "is not a timestamp") }
        self.init(by: try r.required("by", Stored.string), at: ms, note: try r.required("note", Stored.string))
    }
}

extension Waiver: StoredJSON {
    public var stored: JSONValue { json() }

    public init(stored r: StoredReader) throws(StorageError) {
        self.init(by: try r.required("by", Stored.string), note: try r.required("note", Stored.string))
    }
}

extension ProbeSettings: StoredJSON {
    public var stored: JSONValue { json() }

    public init(stored r: StoredReader) throws(StorageError) {
        self.init(
            completion: try r.required("completion", Stored.bool), model: try r.optional("model", Stored.string),
            waiver: try r.optional("waiver", Stored.nested(Waiver.self)))
    }
}

extension CostBasis: StoredJSON {
    public var stored: JSONValue { json() }

    public init(stored r: StoredReader) throws(StorageError) {
        switch try r.required("type", Stored.string) {
        case "none": self = .none
        case "flat_monthly": self = .flatMonthly(feeMicros: try r.required("monthly_fee_micros", Stored.nonNegative))
        case "per_token": self = .perToken(try TokenPrice(stored: r))
        case let other: throw StorageError(r.name("type"), "has the unknown value '\(other.prefix(40))'")
        }
    }
}

/// What the verifier keeps per resource between probes.
public struct ResourceHealth: StoredJSON, Equatable {
    public var consecutiveOK: Int = 0
    public var consecutiveFail: Int = 0
    public var lastProbeAt: Int64?
    public var nextProbeAt: Int64?
    /// Limits learned from the upstream's rate-limit headers, as shown by `GET .../health`.
    public var learned: JSONValue = [:]

    public init(consecutiveOK: Int = 0, consecutiveFail: Int = 0, lastProbeAt: Int64? = nil, nextProbeAt: Int64? = nil, learned: JSONValue = [:]) {
        self.consecutiveOK = consecutiveOK
        self.consecutiveFail = consecutiveFail
        self.lastProbeAt = lastProbeAt
        self.nextProbeAt = nextProbeAt
        self.learned = learned
    }

    public var counters: HealthCounters { HealthCounters(consecutiveOK: consecutiveOK, consecutiveFail: consecutiveFail) }

    public var stored: JSONValue {
        .compact([
            ("consecutive_ok", .int(Int64(consecutiveOK))), ("consecutive_fail", .int(Int64(consecutiveFail))),
            ("last_probe_at", lastProbeAt.map(JSONValue.int)), ("next_probe_at", nextProbeAt.map(JSONValue.int)), ("learned", learned),
        ])
    }

    /// A resource never probed has an empty document: every member is optional here.
    public init(stored r: StoredReader) throws(StorageError) {
        consecutiveOK = Int(try r.optional("consecutive_ok", Stored.nonNegative) ?? 0)
        consecutiveFail = Int(try r.optional("consecutive_fail", Stored.nonNegative) ?? 0)
        lastProbeAt = try r.optional("last_probe_at", Stored.int)
        nextProbeAt = try r.optional("next_probe_at", Stored.int)
        learned = try r.optional("learned") { v, _ in v } ?? [:]
    }
}

extension SeatPlan: StoredJSON {
    public var stored: JSONValue { json() }

    public init(stored r: StoredReader) throws(StorageError) {
        let kind = try r.required("kind", Stored.string)
        guard let k = PlanKind(rawValue: kind) else { throw StorageError(r.name("kind"), "has the unknown value '\(kind.prefix(40))'") }
        self.init(kind: k, name: try r.required("name", Stored.string), weight: try r.required("weight", Stored.double))
    }
}

extension OAuthSettings: StoredJSON {
    public var stored: JSONValue { json() }

    public init(stored r: StoredReader) throws(StorageError) {
        let grant = try r.required("grant", Stored.string)
        guard let g = Grant(rawValue: grant) else { throw StorageError(r.name("grant"), "has the unknown value '\(grant.prefix(40))'") }
        self.init(
            tokenURL: try r.required("token_url", Stored.string), clientId: try r.required("client_id", Stored.string), grant: g,
            scope: try r.required("scope", Stored.string))
    }
}

extension CloudSettings: StoredJSON {
    public var stored: JSONValue { json() }

    public init(stored r: StoredReader) throws(StorageError) {
        var map: [String: String] = [:]
        if let m = r.value("model_map") {
            guard case .object(let members) = m else { throw StorageError(r.name("model_map"), "must be an object") }
            for (k, v) in members { map[k] = try Stored.string(v, r.name("model_map.\(k)")) }
        }
        self.init(
            region: try r.required("region", Stored.string), project: try r.required("project", Stored.string),
            apiVersion: try r.required("api_version", Stored.string), modelMap: map, betas: try r.optional("betas", Stored.strings))
    }
}
