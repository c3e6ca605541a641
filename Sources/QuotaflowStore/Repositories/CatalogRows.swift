import QuotaflowCore

/// What changed in the catalog's tables since the catalog was last published, by kind and id.
///
/// Temporary triggers on the writer connection record every insert, update and delete of a catalog
/// row (an admin change, a seat sweep, an OAuth refresh, a health update) in a temporary table that
/// is part of the same transaction, so a rolled-back write leaves nothing behind and no change can be
/// forgotten by the code that made it.
public struct CatalogChanges: Sendable, Equatable {
    public var tenants: Set<String> = []
    public var projects: Set<String> = []
    public var keys: Set<String> = []
    public var seats: Set<String> = []
    public var resources: Set<String> = []
    public var offers: Set<String> = []
    /// Tenants whose pricing table changed.
    public var pricing: Set<String> = []
    /// Projects whose approvals changed.
    public var approvals: Set<String> = []

    public init() {}

    public var isEmpty: Bool {
        tenants.isEmpty && projects.isEmpty && keys.isEmpty && seats.isEmpty && resources.isEmpty && offers.isEmpty && pricing.isEmpty
            && approvals.isEmpty
    }

    public var count: Int {
        tenants.count + projects.count + keys.count + seats.count + resources.count + offers.count + pricing.count + approvals.count
    }

    /// Records one changed object by its kind, as the change triggers name it.
    public mutating func insert(kind: String, id: String) {
        switch kind {
        case "tenant": tenants.insert(id)
        case "project": projects.insert(id)
        case "key": keys.insert(id)
        case "seat": seats.insert(id)
        case "resource": resources.insert(id)
        case "offer": offers.insert(id)
        case "pricing": pricing.insert(id)
        default: approvals.insert(id)
        }
    }

    /// Both sets of changes.
    public mutating func formUnion(_ other: CatalogChanges) {
        tenants.formUnion(other.tenants)
        projects.formUnion(other.projects)
        keys.formUnion(other.keys)
        seats.formUnion(other.seats)
        resources.formUnion(other.resources)
        offers.formUnion(other.offers)
        pricing.formUnion(other.pricing)
        approvals.formUnion(other.approvals)
    }
}

extension StoreConnection {
    /// (table, kind, the column naming the changed object).
    static let trackedTables: [(table: String, kind: String, column: String)] = [
        ("tenants", "tenant", "id"), ("projects", "project", "id"), ("project_keys", "key", "id"), ("seats", "seat", "id"),
        ("resources", "resource", "id"), ("resource_oauth", "resource", "resource_id"), ("overflow_offers", "offer", "id"),
        ("price_entries", "pricing", "tenant_id"), ("approvals", "approvals", "project_id"),
    ]

    /// Installs the change triggers on this connection (the writer), after migrations. On PostgreSQL
    /// the triggers are part of the schema (migration 0002) and record into this session's temporary
    /// table, created again whenever the connection is.
    public func trackCatalogChanges() throws {
        if dialect == .postgres {
            try addSetup("CREATE TEMP TABLE IF NOT EXISTS catalog_changes (kind TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (kind, id))")
            return
        }
        // No OR IGNORE in the trigger: an outer statement's conflict policy (an upsert) would override it.
        try execute("CREATE TEMP TABLE IF NOT EXISTS catalog_changes (kind TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (kind, id)) WITHOUT ROWID")
        for (table, kind, column) in Self.trackedTables {
            for (event, row) in [("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")] {
                try execute(
                    """
                    CREATE TEMP TRIGGER IF NOT EXISTS qf_track_\(table)_\(event.lowercased()) AFTER \(event) ON main.\(table) BEGIN \
                    INSERT INTO catalog_changes (kind, id) SELECT '\(kind)', \(row).\(column) WHERE NOT EXISTS \
                    (SELECT 1 FROM catalog_changes WHERE kind = '\(kind)' AND id = \(row).\(column)); END
                    """)
            }
        }
    }

    /// The changes recorded so far, which are then forgotten (inside the caller's transaction).
    public func takeCatalogChanges() throws -> CatalogChanges {
        var c = CatalogChanges()
        let table = dialect == .postgres ? "pg_temp.catalog_changes" : "temp.catalog_changes"
        for row in try query("SELECT kind, id FROM \(table)") { c.insert(kind: try row.string("kind"), id: try row.string("id")) }
        if !c.isEmpty { try run("DELETE FROM \(table)") }
        return c
    }

    // MARK: rows by id, for a catalog change (the full load reads the same rows in bulk)

    public func project(id: String) throws -> Project? {
        try queryOne("SELECT \(Self.projectColumns) FROM projects WHERE id = ?", [.text(id)]).map(project(from:))
    }

    /// Every project key with its digest, live or revoked (`id` narrows to one).
    public func projectKeysWithDigest(id: String? = nil) throws -> [(key: ProjectKey, digest: String)] {
        try query("SELECT \(Self.keyColumns), digest FROM project_keys" + (id == nil ? "" : " WHERE id = ?"), id.map { [.text($0)] } ?? []).map {
            row in (try projectKey(from: row), try row.string("digest"))
        }
    }

    /// Every seat with its digests (`id` narrows to one).
    public func seatsWithDigests(id: String? = nil) throws -> [(seat: Seat, digest: String, previousDigest: String?)] {
        try query("SELECT \(Self.seatColumns), digest, previous_digest FROM seats" + (id == nil ? "" : " WHERE id = ?"), id.map { [.text($0)] } ?? [])
            .map { row in (try seat(from: row), try row.string("digest"), try row.optionalString("previous_digest")) }
    }

    /// Resources that are not revoked, with their credentials, in the order they were added (`id` narrows to one,
    /// `tenantId` to a tenant's, `offerId` to those drawing on an offer).
    public func routableResourceRows(
        id: String? = nil, tenantId: String? = nil, offerId: String? = nil
    ) throws -> [(
        resource: Resource, ciphertext: [UInt8]?, position: Int64
    )] {
        var sql = "SELECT \(Self.resourceColumns), credential_ciphertext, rowid AS position FROM resources WHERE state != 'revoked'"
        var args: [SQLValue] = []
        for (column, value) in [("id", id), ("tenant_id", tenantId), ("offer_id", offerId)] {
            if let value {
                sql += " AND \(column) = ?"
                args.append(.text(value))
            }
        }
        return try query(sql + " ORDER BY rowid", args).map { row in
            (try resource(from: row), try row.blob("credential_ciphertext"), try row.int("position"))
        }
    }

    /// Resource ids drawing on an offer (any state), for a change to the offer.
    public func resourceIds(offerId: String) throws -> [String] {
        try query("SELECT id FROM resources WHERE offer_id = ?", [.text(offerId)]).map { try $0.string("id") }
    }

    /// Resource ids of a tenant, for a change to its settings (prices carry the tenant's tool fee).
    public func resourceIds(tenantId: String) throws -> [String] {
        try query("SELECT id FROM resources WHERE tenant_id = ?", [.text(tenantId)]).map { try $0.string("id") }
    }

    public func oauthRow(resourceId: String) throws -> OAuthRow? {
        try queryOne("SELECT \(Self.oauthColumns) FROM resource_oauth WHERE resource_id = ?", [.text(resourceId)]).map(oauthRow(from:))
    }

    public func offerWithCiphertext(id: String) throws -> (offer: OverflowOffer, ciphertext: [UInt8]?)? {
        try queryOne("SELECT \(Self.offerColumns), credential_ciphertext FROM overflow_offers WHERE id = ?", [.text(id)]).map { row in
            (try offer(from: row), try row.blob("credential_ciphertext"))
        }
    }

    /// Open approval requests and grants in force for one project.
    public func liveApprovals(projectId: String, now: Int64) throws -> [Approval] {
        try query(
            """
            SELECT \(Self.approvalColumns) FROM approvals WHERE project_id = ? AND (status = 'open' OR (status = 'approved' AND grant_until > ?)) \
            ORDER BY requested_at, id
            """, [.text(projectId), .int(now)]
        ).map(approval(from:))
    }
}
