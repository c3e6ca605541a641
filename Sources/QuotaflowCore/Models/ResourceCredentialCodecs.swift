// The API forms of a resource's plan, OAuth settings and cloud settings (see Codecs.swift).

extension SeatPlan: JSONCodable {
    public func json() -> JSONValue { ["kind": .string(kind.rawValue), "name": .string(name), "weight": .double(weight)] }

    public init(reading r: ObjectReader) throws {
        try r.rejectUnknown(["kind", "name", "weight"])
        let weight = try r.optional("weight", Field.double(0.01...1000)) ?? 1
        let name = try r.optional("name", Field.string(maxLength: 200, allowEmpty: true)) ?? ""
        self.init(kind: try r.required("kind", Field.enumeration(PlanKind.self)), name: name, weight: weight)
    }
}

extension OAuthSettings: JSONCodable {
    public func json() -> JSONValue {
        ["token_url": .string(tokenURL), "client_id": .string(clientId), "grant": .string(grant.rawValue), "scope": .string(scope)]
    }

    public init(reading r: ObjectReader) throws {
        try r.rejectUnknown(["token_url", "client_id", "grant", "scope", "client_secret", "refresh_token"])
        self.init(
            tokenURL: try r.required("token_url", Field.url), clientId: try r.required("client_id", Field.string(maxLength: 512)),
            grant: try r.optional("grant", Field.enumeration(Grant.self)) ?? .refreshToken,
            scope: try r.optional("scope", Field.string(maxLength: 1000, allowEmpty: true)) ?? "")
    }
}

extension CloudSettings: JSONCodable {
    public func json() -> JSONValue {
        .compact([
            ("region", .string(region)), ("project", .string(project)), ("api_version", .string(apiVersion)),
            ("model_map", .object(modelMap.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
            ("betas", betas.map { .strings($0) }),
        ])
    }

    public init(reading r: ObjectReader) throws {
        try r.rejectUnknown(["region", "project", "api_version", "model_map", "betas"])
        let token = Field.string(maxLength: 100, allowEmpty: true)
        let region = try r.optional("region", token) ?? ""
        if region.contains(where: { !($0.isLetter || $0.isNumber || $0 == "-") }) {
            throw FieldError(r.fieldName("region"), "must be a region name such as us-east-1 or us-east5")
        }
        let project = try r.optional("project", token) ?? ""
        if project.contains(where: { !($0.isLetter || $0.isNumber || $0 == "-" || $0 == ":" || $0 == ".") }) {
            throw FieldError(r.fieldName("project"), "must be a Google Cloud project id")
        }
        var map: [String: String] = [:]
        if let m = try r.optional("model_map", Field.stringMap) {
            for (k, v) in m {
                guard ModelPattern.isValid(k), !v.isEmpty, !v.contains(" "), !v.contains("?"), !v.contains("#") else {
                    throw FieldError(r.fieldName("model_map.\(k)"), "must map a model name to a platform model id without spaces")
                }
                map[k] = v
            }
        }
        let betas = try r.optional("betas", Field.array(maxCount: 100, Field.string(maxLength: 100)))
        self.init(region: region, project: project, apiVersion: try r.optional("api_version", token) ?? "", modelMap: map, betas: betas)
    }
}
