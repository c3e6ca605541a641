import QuotaflowCore
import QuotaflowStore

/// A tenant's policy as the server holds it: the objects a policy document names, read in one
/// transaction from the tenant's own rows (nothing of other tenants is touched).
struct PolicyState: Sendable {
    var tenant: Tenant
    var pricing: [PriceEntry]
    var pools: [Pool]
    /// Resources that are not revoked.
    var resources: [Resource]
    var digests: [String: String]
    var projects: [Project]
    /// Live (not revoked) keys.
    var keys: [ProjectKey]
    /// Seats neither revoked nor expired.
    var seats: [Seat]
    var webhooks: [Webhook]

    static func read(_ conn: StoreConnection, tenantId: String, now: Int64) throws -> PolicyState? {
        guard let tenant = try conn.tenant(id: tenantId) else { return nil }
        return PolicyState(
            tenant: tenant, pricing: try conn.priceEntries(tenantId: tenantId), pools: try conn.pools(tenantId: tenantId),
            resources: try conn.resources(tenantId: tenantId).filter { $0.state != .revoked },
            digests: try conn.credentialDigests(tenantId: tenantId),
            projects: try conn.projects(tenantId: tenantId), keys: try conn.projectKeys(tenantId: tenantId).filter { $0.revokedAt == nil },
            seats: try conn.seats(tenantId: tenantId).filter { $0.state(at: now) == .active },
            webhooks: try conn.webhooks(tenantId: tenantId))
    }

    /// What a plan was computed against: the document with its credential digests, the ids behind
    /// the names, and every row's last change.
    var fingerprint: String {
        var parts = [JSONWriter.string(document()), digests.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")]
        parts.append(JSONWriter.string(tenant.settings.json()) + "\(tenant.updatedAt)")
        parts += projects.map { "\($0.id):\($0.status.rawValue):\($0.updatedAt)" }
        parts += resources.map { "\($0.id):\($0.state.rawValue):\($0.updatedAt)" }
        parts += keys.map(\.id) + seats.map { "\($0.id):\($0.updatedAt)" } + webhooks.map(\.id) + pools.map(\.id)
        return parts.joined(separator: "\n")
    }

    func project(named name: String) -> Project? { projects.first { $0.name == name } }
    func pool(named name: String) -> Pool? { pools.first { $0.name == name } }
    func poolName(_ id: String) -> String { pools.first { $0.id == id }?.name ?? id }
    func projectName(_ id: String?) -> String? { id.map { id in projects.first { $0.id == id }?.name ?? id } }

    /// The state as a policy document: what `export` writes and what `plan` compares against.
    /// Secrets are left out; the CLI writes references in their place.
    func document() -> JSONValue {
        var settings = tenant.settings.json()
        settings = .object((settings.objectMembers ?? []).filter { !$0.1.isNull })
        let pricing: [JSONValue] = pricing.map { e in .object([("model", .string(e.model))] + (e.price.json().objectMembers ?? [])) }
        let pools: [JSONValue] = pools.map { pool in
            .object([
                ("name", .string(pool.name)),
                ("resources", .array(resources.filter { $0.poolId == pool.id }.sorted { $0.name < $1.name }.map(PolicyState.resourceJSON))),
            ])
        }
        let projects: [JSONValue] = projects.filter { $0.status == .active }.map { p in
            var members = PolicyState.projectJSON(p, parent: projectName(p.parentId), pools: p.poolIds.map(poolName)).objectMembers ?? []
            let channels = webhooks.filter { $0.projectId == p.id }.map { w in
                JSONValue.object([("format", .string(w.format.rawValue)), ("url", .string(w.url))])
            }
            if !channels.isEmpty { members.append(("alert_channels", .array(channels))) }
            let keys = keys.filter { $0.projectId == p.id }.map(PolicyState.keyJSON)
            if !keys.isEmpty { members.append(("keys", .array(keys))) }
            let seats = seats.filter { $0.projectId == p.id }.map(PolicyState.seatJSON)
            if !seats.isEmpty { members.append(("seats", .array(seats))) }
            return .object(members)
        }
        return .object([
            ("tenant", .string(tenant.name)), ("settings", settings), ("pricing", .array(pricing)), ("pools", .array(pools)),
            ("projects", .array(projects)),
        ])
    }

    /// A resource's settings as written in a policy (its pool is where it is listed; no secret).
    static func resourceJSON(_ r: Resource) -> JSONValue {
        let writable = ResourcesController.writableJSON(r).objectMembers ?? []
        let settings = writable.filter { !["pool_id", "name"].contains($0.0) }
        var members: [(String, JSONValue)] = [("name", .string(r.name)), ("kind", .string(r.kind.rawValue))]
        if let offer = r.offerId { members.append(("offer_id", .string(offer))) }
        if let oauth = r.oauth, r.provider != .vertex { members.append(("oauth", oauth.json())) }
        return .object(members + settings)
    }

    static func projectJSON(_ p: Project, parent: String?, pools: [String]) -> JSONValue {
        let writable = ProjectsController.writableJSON(p).objectMembers ?? []
        var members: [(String, JSONValue)] = [("name", .string(p.name))]
        if let parent { members.append(("parent", .string(parent))) }
        if !pools.isEmpty { members.append(("pools", .strings(pools))) }
        return .object(members + writable.filter { !["name", "parent_id", "pool_ids"].contains($0.0) })
    }

    static func keyJSON(_ k: ProjectKey) -> JSONValue {
        .compact([
            ("name", .string(k.name)), ("allowed_models", k.allowedModels.isEmpty ? nil : .strings(k.allowedModels)),
            ("budget_cap_micros", k.budgetCapMicros.map(JSONValue.int)), ("rpm", k.rpm.map(JSONValue.int)),
        ])
    }

    static func seatJSON(_ s: Seat) -> JSONValue {
        .compact([
            ("holder", .string(s.holder)), ("contact", s.contact.isEmpty ? nil : .string(s.contact)),
            ("note", s.note.isEmpty ? nil : .string(s.note)),
            ("expires_at", Rep.time(s.expiresAt)), ("budget_cap_micros", s.budgetCapMicros.map(JSONValue.int)), ("rpm", s.rpm.map(JSONValue.int)),
            ("allowed_models", s.allowedModels.isEmpty ? nil : .strings(s.allowedModels)),
        ])
    }
}

/// One change a policy makes: an object created, updated (field by field), or retired (a project
/// archived; a key, seat or resource revoked; a price or an alert channel deleted).
struct PolicyChange: Sendable {
    enum Action: String, Sendable {
        case create, update, delete, archive, revoke
    }

    struct Field: Sendable {
        let name: String
        let old: JSONValue?
        let new: JSONValue?
        /// A secret: the plan says that it changes, never what it is.
        var secret = false
    }

    let action: Action
    let kind: String
    let name: String
    let path: String
    var fields: [Field] = []

    func json() -> JSONValue {
        .compact([
            ("action", .string(action.rawValue)), ("kind", .string(kind)), ("name", .string(name)), ("path", .string(path)),
            (
                "fields",
                fields.isEmpty
                    ? nil
                    : .array(
                        fields.map { f in
                            f.secret
                                ? .object([("field", .string(f.name)), ("secret", .bool(true)), ("changed", .bool(true))])
                                : .object([("field", .string(f.name)), ("old", f.old ?? .null), ("new", f.new ?? .null)])
                        })
            ),
        ])
    }

    /// The fields of a new object worth showing: empty strings and lists are left out.
    static func created(_ new: JSONValue) -> [Field] {
        diff([:], new).filter { f in f.new != .string("") && f.new != .array([]) && f.name != "name" }
    }

    /// Field-by-field differences of two JSON objects, nested objects flattened with dots.
    static func diff(_ old: JSONValue, _ new: JSONValue, prefix: String = "") -> [Field] {
        let a = flatten(old, prefix)
        let b = flatten(new, prefix)
        var names = a.map(\.0)
        for (k, _) in b where !names.contains(k) { names.append(k) }
        return names.compactMap { name in
            let x = a.first { $0.0 == name }?.1
            let y = b.first { $0.0 == name }?.1
            return (x ?? .null) == (y ?? .null) ? nil : Field(name: name, old: x, new: y)
        }
    }

    static func flatten(_ v: JSONValue, _ prefix: String) -> [(String, JSONValue)] {
        guard let members = v.objectMembers else { return prefix.isEmpty ? [] : [(prefix, v)] }
        return members.filter { !$0.1.isNull }.flatMap { k, v in
            let name = prefix.isEmpty ? k : "\(prefix).\(k)"
            return v.objectMembers != nil ? flatten(v, name) : [(name, v)]
        }
    }
}
