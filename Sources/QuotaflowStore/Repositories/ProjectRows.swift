import QuotaflowCore

/// The policy part of a project, stored as one JSON column.
struct ProjectPolicy: JSONCodable {
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

    func json() -> JSONValue {
        .compact([
            ("overflow_allowed", .bool(overflowAllowed)), ("overflow_cap_micros", overflowCapMicros.map(JSONValue.int)),
            ("budget", budget.json()), ("request_limits", requestLimits.json()), ("rate_limits", rateLimits.json()),
            ("enforcement", enforcement.map { .string($0.rawValue) }),
        ])
    }

    init(reading r: ObjectReader) throws {
        overflowAllowed = try r.optional("overflow_allowed", Field.bool) ?? false
        overflowCapMicros = try r.optional("overflow_cap_micros", Field.micros)
        budget = try r.optional("budget", Budget.converter) ?? .init()
        requestLimits = try r.optional("request_limits", RequestLimits.converter) ?? .init()
        rateLimits = try r.optional("rate_limits", RateLimits.converter) ?? .init()
        enforcement = try r.optional("enforcement", Field.enumeration(Enforcement.self))
    }
}

extension SQLiteConnection {
    static let projectColumns =
        "id, tenant_id, name, parent_id, pool_ids_json, allowed_models_json, status, policy_json, attributes_json, created_at, updated_at"

    func project(from row: Row) -> Project {
        let policy = ProjectPolicy.decodeStored(row.string(7), fallback: ProjectPolicy(Project(id: "", tenantId: "", name: "")))
        return Project(
            id: row.string(0), tenantId: row.string(1), name: row.string(2), parentId: row.optionalString(3),
            poolIds: storedStrings(row.string(4)), allowedModels: storedStrings(row.string(5)),
            status: ProjectStatus(rawValue: row.string(6)) ?? .archived, overflowAllowed: policy.overflowAllowed,
            overflowCapMicros: policy.overflowCapMicros, budget: policy.budget, requestLimits: policy.requestLimits,
            rateLimits: policy.rateLimits, enforcement: policy.enforcement, attributes: storedMap(row.string(8)), createdAt: row.int(9),
            updatedAt: row.int(10))
    }

    func projectValues(_ p: Project) -> [SQLValue] {
        [
            .text(p.id), .text(p.tenantId), .text(p.name), .text(p.parentId), jsonText(p.poolIds), jsonText(p.allowedModels),
            .text(p.status.rawValue), .text(ProjectPolicy(p).json().text), jsonText(p.attributes), .int(p.createdAt), .int(p.updatedAt),
        ]
    }

    public func insertProject(_ p: Project) throws {
        try run("INSERT INTO projects (\(Self.projectColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", projectValues(p))
    }

    public func updateProject(_ p: Project) throws {
        let v = projectValues(p)
        try run(
            """
            UPDATE projects SET name = ?, parent_id = ?, pool_ids_json = ?, allowed_models_json = ?, status = ?, policy_json = ?, \
            attributes_json = ?, updated_at = ? WHERE tenant_id = ? AND id = ?
            """, [v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[10], v[1], v[0]])
    }

    public func project(tenantId: String, id: String) throws -> Project? {
        try queryOne("SELECT \(Self.projectColumns) FROM projects WHERE tenant_id = ? AND id = ?", [.text(tenantId), .text(id)])
            .map(project(from:))
    }

    public func projects(tenantId: String) throws -> [Project] {
        try query("SELECT \(Self.projectColumns) FROM projects WHERE tenant_id = ? ORDER BY name", [.text(tenantId)]).map(project(from:))
    }

    public func allProjects() throws -> [Project] {
        try query("SELECT \(Self.projectColumns) FROM projects").map(project(from:))
    }

    /// Whether any project uses the pool.
    public func projectsUsing(tenantId: String, poolId: String) throws -> [String] {
        try projects(tenantId: tenantId).filter { $0.poolIds.contains(poolId) && $0.status == .active }.map(\.name)
    }

    // MARK: project keys

    static let keyColumns =
        "id, tenant_id, project_id, name, prefix, allowed_models_json, budget_cap_micros, rpm, created_by, created_at, revoked_at"

    func projectKey(from row: Row) -> ProjectKey {
        ProjectKey(
            id: row.string(0), tenantId: row.string(1), projectId: row.string(2), name: row.string(3), prefix: row.string(4),
            allowedModels: storedStrings(row.string(5)), budgetCapMicros: row.optionalInt(6), rpm: row.optionalInt(7),
            createdBy: row.string(8), createdAt: row.int(9), revokedAt: row.optionalInt(10))
    }

    public func insertProjectKey(_ k: ProjectKey, digest: String) throws {
        try run(
            "INSERT INTO project_keys (\(Self.keyColumns), digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                .text(k.id), .text(k.tenantId), .text(k.projectId), .text(k.name), .text(k.prefix), jsonText(k.allowedModels),
                .int(k.budgetCapMicros), .int(k.rpm), .text(k.createdBy), .int(k.createdAt), .int(k.revokedAt), .text(digest),
            ])
    }

    public func updateProjectKey(_ k: ProjectKey) throws {
        try run(
            "UPDATE project_keys SET name = ?, allowed_models_json = ?, budget_cap_micros = ?, rpm = ?, revoked_at = ? WHERE tenant_id = ? AND id = ?",
            [.text(k.name), jsonText(k.allowedModels), .int(k.budgetCapMicros), .int(k.rpm), .int(k.revokedAt), .text(k.tenantId), .text(k.id)])
    }

    public func projectKey(tenantId: String, id: String) throws -> ProjectKey? {
        try queryOne("SELECT \(Self.keyColumns) FROM project_keys WHERE tenant_id = ? AND id = ?", [.text(tenantId), .text(id)])
            .map(projectKey(from:))
    }

    public func projectKeys(tenantId: String, projectId: String) throws -> [ProjectKey] {
        try query(
            "SELECT \(Self.keyColumns) FROM project_keys WHERE tenant_id = ? AND project_id = ? ORDER BY created_at, id",
            [.text(tenantId), .text(projectId)]
        ).map(projectKey(from:))
    }

    /// Every live key with its digest, for the authentication cache.
    public func allLiveProjectKeys() throws -> [(ProjectKey, String)] {
        try query("SELECT \(Self.keyColumns), digest FROM project_keys WHERE revoked_at IS NULL").map { ($0, $0.string(11)) }
            .map { (projectKey(from: $0.0), $0.1) }
    }

    /// Digest → key id of revoked keys, so they can be answered with `key_revoked`.
    public func revokedKeyDigests() throws -> [String: String] {
        var out: [String: String] = [:]
        for row in try query("SELECT digest, id FROM project_keys WHERE revoked_at IS NOT NULL") { out[row.string(0)] = row.string(1) }
        return out
    }
}
