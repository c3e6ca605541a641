import QuotaflowCore

extension StoreConnection {
    static let poolColumns = "id, tenant_id, name, description, created_at, updated_at"

    func pool(from row: Row) throws -> Pool {
        Pool(
            id: try row.string("id"), tenantId: try row.string("tenant_id"), name: try row.string("name"), description: try row.string("description"),
            createdAt: try row.int("created_at"), updatedAt: try row.int("updated_at"))
    }

    public func insertPool(_ p: Pool) throws {
        try run(
            "INSERT INTO pools (\(Self.poolColumns)) VALUES (?, ?, ?, ?, ?, ?)",
            [.text(p.id), .text(p.tenantId), .text(p.name), .text(p.description), .int(p.createdAt), .int(p.updatedAt)])
    }

    public func updatePool(_ p: Pool) throws {
        try run(
            "UPDATE pools SET name = ?, description = ?, updated_at = ? WHERE tenant_id = ? AND id = ?",
            [.text(p.name), .text(p.description), .int(p.updatedAt), .text(p.tenantId), .text(p.id)])
    }

    public func pool(tenantId: String, id: String) throws -> Pool? {
        try queryOne("SELECT \(Self.poolColumns) FROM pools WHERE tenant_id = ? AND id = ?", [.text(tenantId), .text(id)])
            .map(pool(from:))
    }

    /// A page of the tenant's pools by name: after `after`, at most `limit`.
    public func pools(tenantId: String, after: String?, limit: Int) throws -> [Pool] {
        try query(
            "SELECT \(Self.poolColumns) FROM pools WHERE tenant_id = ? AND name > ? ORDER BY name LIMIT ?",
            [.text(tenantId), .text(after ?? ""), .int(Int64(limit))]
        ).map(pool(from:))
    }

    public func pools(tenantId: String) throws -> [Pool] {
        try query("SELECT \(Self.poolColumns) FROM pools WHERE tenant_id = ? ORDER BY name", [.text(tenantId)]).map(pool(from:))
    }

    /// Deletes an emptied pool together with its revoked resources (their ledger rows keep the ids;
    /// the caller has checked that no live resource and no project still uses the pool).
    public func deletePool(tenantId: String, id: String) throws {
        try run("DELETE FROM resources WHERE tenant_id = ? AND pool_id = ? AND state = 'revoked'", [.text(tenantId), .text(id)])
        try run("DELETE FROM pools WHERE tenant_id = ? AND id = ?", [.text(tenantId), .text(id)])
    }

    /// Resources in the pool that are not revoked (revoked ones are history, they do not hold the pool).
    public func liveResourceCount(tenantId: String, poolId: String) throws -> Int {
        Int(
            try queryOne(
                "SELECT COUNT(*) AS n FROM resources WHERE tenant_id = ? AND pool_id = ? AND state != 'revoked'", [.text(tenantId), .text(poolId)]
            )?.int("n") ?? 0)
    }

    /// Names of the active projects that draw on the pool.
    public func projectsUsing(tenantId: String, poolId: String) throws -> [String] {
        try projects(tenantId: tenantId).filter { $0.poolIds.contains(poolId) && $0.status == .active }.map(\.name)
    }

    // MARK: resources

    static let resourceColumns = """
        id, tenant_id, pool_id, name, kind, provider, wire_format, base_url, credential_hint, models_json, owner, attestation_json, \
        allowed_use, cost_basis_json, limits_json, lease_mode, probe_json, state, state_reason, state_changed_at, cooling_until, \
        manual_hold, offer_id, credit_cap_micros, created_at, updated_at, egress_exempt, families, plan_json, oauth_json, cloud_json
        """

    func resource(from row: Row) throws -> Resource {
        // Empty for rows written before schema 0007: the provider's defaults.
        let families = try row.string("families").split(separator: ",").map { name throws(StorageError) -> ApiFamily in
            guard let f = ApiFamily(rawValue: String(name)) else { throw StorageError("families", "has the unknown value '\(name.prefix(40))'") }
            return f
        }
        let kind = try row.enumeration("kind", ResourceKind.self)
        // Empty for rows written before schema 0008: the kind's default plan.
        let planText = try row.string("plan_json")
        let plan = planText.isEmpty ? SeatPlan.defaultFor(kind) : try row.stored("plan_json", SeatPlan.self)
        return Resource(
            id: try row.string("id"), tenantId: try row.string("tenant_id"), poolId: try row.string("pool_id"), name: try row.string("name"),
            kind: kind, provider: try row.enumeration("provider", Provider.self),
            wireFormat: try row.enumeration("wire_format", WireFormat.self), families: families.isEmpty ? nil : families,
            baseURL: try row.string("base_url"),
            credentialHint: try row.string("credential_hint"), models: try row.strings("models_json"), owner: try row.string("owner"),
            attestation: try row.optionalStored("attestation_json", Attestation.self), allowedUse: try row.string("allowed_use"),
            costBasis: try row.stored("cost_basis_json", CostBasis.self), limits: try row.stored("limits_json", ResourceLimits.self),
            leaseMode: try row.enumeration("lease_mode", LeaseMode.self), plan: plan,
            oauth: try row.optionalStored("oauth_json", OAuthSettings.self), cloud: try row.optionalStored("cloud_json", CloudSettings.self),
            probe: try row.stored("probe_json", ProbeSettings.self),
            state: try row.enumeration("state", ResourceState.self), stateReason: try row.string("state_reason"),
            stateChangedAt: try row.int("state_changed_at"), coolingUntil: try row.optionalInt("cooling_until"),
            manualHold: try row.bool("manual_hold"),
            offerId: try row.optionalString("offer_id"), creditCapMicros: try row.optionalInt("credit_cap_micros"),
            createdAt: try row.int("created_at"),
            updatedAt: try row.int("updated_at"), egressExempt: try row.bool("egress_exempt"))
    }

    func resourceValues(_ r: Resource) -> [SQLValue] {
        [
            .text(r.id), .text(r.tenantId), .text(r.poolId), .text(r.name), .text(r.kind.rawValue), .text(r.provider.rawValue),
            .text(r.wireFormat.rawValue), .text(r.baseURL), .text(r.credentialHint), jsonText(r.models), .text(r.owner),
            .text(r.attestation?.storedText), .text(r.allowedUse), .text(r.costBasis.storedText), .text(r.limits.storedText),
            .text(r.leaseMode.rawValue), .text(r.probe.storedText), .text(r.state.rawValue), .text(r.stateReason),
            .int(r.stateChangedAt), .int(r.coolingUntil), .bool(r.manualHold), .text(r.offerId), .int(r.creditCapMicros),
            .int(r.createdAt), .int(r.updatedAt), .bool(r.egressExempt), .text(r.families.map(\.rawValue).joined(separator: ",")),
            .text(r.plan.storedText), .text(r.oauth?.storedText), .text(r.cloud?.storedText),
        ]
    }

    public func insertResource(_ r: Resource, ciphertext: [UInt8]?) throws {
        try run(
            "INSERT INTO resources (\(Self.resourceColumns), credential_ciphertext) VALUES (\(Array(repeating: "?", count: 32).joined(separator: ", ")))",
            resourceValues(r) + [ciphertext.map { .blob($0) } ?? .null])
    }

    /// Writes every column but the credential and the identity columns.
    public func updateResource(_ r: Resource) throws {
        let columns = Self.resourceColumns.split(separator: ",").map { String($0).trimmingWhitespace() }
        let values = resourceValues(r)
        var sets: [String] = []
        var args: [SQLValue] = []
        for (column, value) in zip(columns, values) where !["id", "tenant_id", "created_at"].contains(column) {
            sets.append("\(column) = ?")
            args.append(value)
        }
        try run("UPDATE resources SET \(sets.joined(separator: ", ")) WHERE tenant_id = ? AND id = ?", args + [.text(r.tenantId), .text(r.id)])
    }

    public func setResourceCredential(tenantId: String, id: String, ciphertext: [UInt8], hint: String, digest: String?, at: Int64) throws {
        try run(
            "UPDATE resources SET credential_ciphertext = ?, credential_hint = ?, credential_digest = ?, updated_at = ? WHERE tenant_id = ? AND id = ?",
            [.blob(ciphertext), .text(hint), .text(digest), .int(at), .text(tenantId), .text(id)])
    }

    public func setCredentialDigest(resourceId: String, _ digest: String?) throws {
        try run("UPDATE resources SET credential_digest = ? WHERE id = ?", [.text(digest), .text(resourceId)])
    }

    /// Keyed digests of the tenant's resource credentials, by resource id (NULL ones are absent).
    public func credentialDigests(tenantId: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for row in try query("SELECT id, credential_digest FROM resources WHERE tenant_id = ? AND credential_digest IS NOT NULL", [.text(tenantId)]) {
            out[try row.string("id")] = try row.string("credential_digest")
        }
        return out
    }

    /// Resources whose stored credential has no digest yet (written before digests were kept).
    public func credentialsWithoutDigest() throws -> [(id: String, ciphertext: [UInt8])] {
        try query(
            "SELECT id, credential_ciphertext FROM resources WHERE credential_digest IS NULL AND length(credential_ciphertext) > 0"
        ).compactMap { row in try row.blob("credential_ciphertext").map { (try row.string("id"), $0) } }
    }

    public func resource(tenantId: String, id: String) throws -> Resource? {
        try queryOne("SELECT \(Self.resourceColumns) FROM resources WHERE tenant_id = ? AND id = ?", [.text(tenantId), .text(id)])
            .map(resource(from:))
    }

    public struct ResourceFilter: Sendable {
        public var poolId: String?
        public var kind: ResourceKind?
        public var state: ResourceState?
        public var provider: Provider?
        /// A page: names after this one, at most `limit` of them.
        public var after: String?
        public var limit: Int?

        public init(
            poolId: String? = nil, kind: ResourceKind? = nil, state: ResourceState? = nil, provider: Provider? = nil, after: String? = nil,
            limit: Int? = nil
        ) {
            self.poolId = poolId
            self.kind = kind
            self.state = state
            self.provider = provider
            self.after = after
            self.limit = limit
        }
    }

    public func resources(tenantId: String, filter: ResourceFilter = .init()) throws -> [Resource] {
        var sql = "SELECT \(Self.resourceColumns) FROM resources WHERE tenant_id = ?"
        var args: [SQLValue] = [.text(tenantId)]
        if let v = filter.poolId {
            sql += " AND pool_id = ?"
            args.append(.text(v))
        }
        if let v = filter.kind {
            sql += " AND kind = ?"
            args.append(.text(v.rawValue))
        }
        if let v = filter.state {
            sql += " AND state = ?"
            args.append(.text(v.rawValue))
        }
        if let v = filter.provider {
            sql += " AND provider = ?"
            args.append(.text(v.rawValue))
        }
        if let v = filter.after {
            sql += " AND name > ?"
            args.append(.text(v))
        }
        sql += " ORDER BY name"
        if let limit = filter.limit {
            sql += " LIMIT ?"
            args.append(.int(Int64(limit)))
        }
        return try query(sql, args).map(resource(from:))
    }

    /// Every resource with its ciphertext, for the routing catalog.
    public func resourceCiphertext(tenantId: String, id: String) throws -> [UInt8]? {
        try queryOne("SELECT credential_ciphertext FROM resources WHERE tenant_id = ? AND id = ?", [.text(tenantId), .text(id)])?
            .blob("credential_ciphertext")
    }
}
