import QuotaflowCore

extension SQLiteConnection {
    static let poolColumns = "id, tenant_id, name, description, created_at, updated_at"

    func pool(from row: Row) -> Pool {
        Pool(
            id: row.string(0), tenantId: row.string(1), name: row.string(2), description: row.string(3), createdAt: row.int(4),
            updatedAt: row.int(5))
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

    public func pools(tenantId: String) throws -> [Pool] {
        try query("SELECT \(Self.poolColumns) FROM pools WHERE tenant_id = ? ORDER BY name", [.text(tenantId)]).map(pool(from:))
    }

    public func deletePool(tenantId: String, id: String) throws {
        try run("DELETE FROM pools WHERE tenant_id = ? AND id = ?", [.text(tenantId), .text(id)])
    }

    /// Resources in the pool that are not revoked (revoked ones are history, they do not hold the pool).
    public func liveResourceCount(tenantId: String, poolId: String) throws -> Int {
        Int(
            try queryOne(
                "SELECT COUNT(*) FROM resources WHERE tenant_id = ? AND pool_id = ? AND state != 'revoked'", [.text(tenantId), .text(poolId)]
            )?.int(0) ?? 0)
    }

    // MARK: resources

    static let resourceColumns = """
        id, tenant_id, pool_id, name, kind, provider, wire_format, base_url, credential_hint, models_json, owner, attestation_json, \
        allowed_use, cost_basis_json, limits_json, lease_mode, probe_json, state, state_reason, state_changed_at, cooling_until, \
        manual_hold, offer_id, credit_cap_micros, created_at, updated_at, egress_exempt
        """

    func resource(from row: Row) -> Resource {
        let kind = ResourceKind(rawValue: row.string(4)) ?? .apiKey
        return Resource(
            id: row.string(0), tenantId: row.string(1), poolId: row.string(2), name: row.string(3), kind: kind,
            provider: Provider(rawValue: row.string(5)) ?? .openaiCompatible, wireFormat: WireFormat(rawValue: row.string(6)) ?? .openai,
            baseURL: row.string(7), credentialHint: row.string(8), models: storedStrings(row.string(9)), owner: row.string(10),
            attestation: row.optionalString(11).flatMap { text in
                try? Attestation.read(JSONValue.stored(text), field: "attestation")
            },
            allowedUse: row.string(12), costBasis: CostBasis.decodeStored(row.string(13), fallback: .none),
            limits: ResourceLimits.decodeStored(row.string(14), fallback: .init()), leaseMode: LeaseMode(rawValue: row.string(15)),
            probe: ProbeSettings.decodeStored(row.string(16), fallback: .init()), state: ResourceState(rawValue: row.string(17)) ?? .suspended,
            stateReason: row.string(18), stateChangedAt: row.int(19), coolingUntil: row.optionalInt(20), manualHold: row.bool(21),
            offerId: row.optionalString(22), creditCapMicros: row.optionalInt(23), createdAt: row.int(24), updatedAt: row.int(25),
            egressExempt: row.bool(26))
    }

    func resourceValues(_ r: Resource) -> [SQLValue] {
        [
            .text(r.id), .text(r.tenantId), .text(r.poolId), .text(r.name), .text(r.kind.rawValue), .text(r.provider.rawValue),
            .text(r.wireFormat.rawValue), .text(r.baseURL), .text(r.credentialHint), jsonText(r.models), .text(r.owner),
            .text(r.attestation?.json().text), .text(r.allowedUse), .text(r.costBasis.json().text), .text(r.limits.json().text),
            .text(r.leaseMode.rawValue), .text(r.probe.json().text), .text(r.state.rawValue), .text(r.stateReason),
            .int(r.stateChangedAt), .int(r.coolingUntil), .bool(r.manualHold), .text(r.offerId), .int(r.creditCapMicros),
            .int(r.createdAt), .int(r.updatedAt), .bool(r.egressExempt),
        ]
    }

    public func insertResource(_ r: Resource, ciphertext: [UInt8]?) throws {
        try run(
            "INSERT INTO resources (\(Self.resourceColumns), credential_ciphertext) VALUES (\(Array(repeating: "?", count: 28).joined(separator: ", ")))",
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

    public func setResourceCredential(tenantId: String, id: String, ciphertext: [UInt8], hint: String, at: Int64) throws {
        try run(
            "UPDATE resources SET credential_ciphertext = ?, credential_hint = ?, updated_at = ? WHERE tenant_id = ? AND id = ?",
            [.blob(ciphertext), .text(hint), .int(at), .text(tenantId), .text(id)])
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

        public init(poolId: String? = nil, kind: ResourceKind? = nil, state: ResourceState? = nil, provider: Provider? = nil) {
            self.poolId = poolId
            self.kind = kind
            self.state = state
            self.provider = provider
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
        return try query(sql + " ORDER BY name", args).map(resource(from:))
    }

    /// Every resource with its ciphertext, for the routing catalog.
    public func allResourcesWithCiphertext() throws -> [(Resource, [UInt8]?)] {
        try query("SELECT \(Self.resourceColumns), credential_ciphertext FROM resources WHERE state != 'revoked'").map { row in
            let blob = row.blob(27)
            return (resource(from: row), blob.isEmpty ? nil : blob)
        }
    }

    public func resourceCiphertext(tenantId: String, id: String) throws -> [UInt8]? {
        let blob = try queryOne("SELECT credential_ciphertext FROM resources WHERE tenant_id = ? AND id = ?", [.text(tenantId), .text(id)])?
            .blob(0)
        return (blob?.isEmpty ?? true) ? nil : blob
    }
}
