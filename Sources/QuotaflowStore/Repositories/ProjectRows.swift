import QuotaflowCore

extension StoreConnection {
    static let projectColumns =
        "id, tenant_id, name, parent_id, pool_ids_json, allowed_models_json, status, policy_json, attributes_json, created_at, updated_at"

    func project(from row: Row) throws -> Project {
        let policy = try row.stored("policy_json", ProjectPolicy.self)
        return Project(
            id: try row.string("id"), tenantId: try row.string("tenant_id"), name: try row.string("name"),
            parentId: try row.optionalString("parent_id"),
            poolIds: try row.strings("pool_ids_json"), allowedModels: try row.strings("allowed_models_json"),
            status: try row.enumeration("status", ProjectStatus.self), overflowAllowed: policy.overflowAllowed,
            overflowCapMicros: policy.overflowCapMicros, budget: policy.budget, requestLimits: policy.requestLimits, rateLimits: policy.rateLimits,
            enforcement: policy.enforcement, attributes: try row.stringMap("attributes_json"), createdAt: try row.int("created_at"),
            updatedAt: try row.int("updated_at"))
    }

    func projectValues(_ p: Project) -> [SQLValue] {
        [
            .text(p.id), .text(p.tenantId), .text(p.name), .text(p.parentId), jsonText(p.poolIds), jsonText(p.allowedModels),
            .text(p.status.rawValue), .text(ProjectPolicy(p).storedText), jsonText(p.attributes), .int(p.createdAt), .int(p.updatedAt),
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

    /// A page of the tenant's projects by name (the unique (tenant, name) index): after `after`, at most `limit`.
    public func projects(tenantId: String, status: ProjectStatus?, after: String?, limit: Int) throws -> [Project] {
        var sql = "SELECT \(Self.projectColumns) FROM projects WHERE tenant_id = ? AND name > ?"
        var args: [SQLValue] = [.text(tenantId), .text(after ?? "")]
        if let status {
            sql += " AND status = ?"
            args.append(.text(status.rawValue))
        }
        return try query(sql + " ORDER BY name LIMIT ?", args + [.int(Int64(limit))]).map(project(from:))
    }

    public func allProjects() throws -> [Project] {
        try query("SELECT \(Self.projectColumns) FROM projects").map(project(from:))
    }

    // MARK: project keys

    static let keyColumns =
        "id, tenant_id, project_id, name, prefix, allowed_models_json, budget_cap_micros, rpm, created_by, created_at, revoked_at"

    func projectKey(from row: Row) throws -> ProjectKey {
        ProjectKey(
            id: try row.string("id"), tenantId: try row.string("tenant_id"), projectId: try row.string("project_id"), name: try row.string("name"),
            prefix: try row.string("prefix"), allowedModels: try row.strings("allowed_models_json"),
            budgetCapMicros: try row.optionalInt("budget_cap_micros"), rpm: try row.optionalInt("rpm"), createdBy: try row.string("created_by"),
            createdAt: try row.int("created_at"), revokedAt: try row.optionalInt("revoked_at"))
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

    public func projectKeys(tenantId: String) throws -> [ProjectKey] {
        try query("SELECT \(Self.keyColumns) FROM project_keys WHERE tenant_id = ? ORDER BY created_at, id", [.text(tenantId)]).map(projectKey(from:))
    }

    /// A page of a project's keys in the order they were issued: after position `after`, at most `limit`.
    public func projectKeys(tenantId: String, projectId: String, after: Int64?, limit: Int) throws -> [(key: ProjectKey, position: Int64)] {
        try query(
            "SELECT \(Self.keyColumns), rowid AS position FROM project_keys WHERE project_id = ? AND tenant_id = ? AND rowid > ? ORDER BY rowid LIMIT ?",
            [.text(projectId), .text(tenantId), .int(after ?? 0), .int(Int64(limit))]
        ).map { row in (try projectKey(from: row), try row.int("position")) }
    }

    public func projectKeys(tenantId: String, projectId: String) throws -> [ProjectKey] {
        try query(
            "SELECT \(Self.keyColumns) FROM project_keys WHERE tenant_id = ? AND project_id = ? ORDER BY created_at, id",
            [.text(tenantId), .text(projectId)]
        ).map(projectKey(from:))
    }

    /// Every live key with its digest, for the authentication cache.
}
