import HashTreeCollections
import Hummingbird
import QuotaflowCore
import QuotaflowStore

/// `/admin/v1/tenants/{tenant_id}/policy`: a tenant's whole policy as one document. `GET` exports
/// it (secrets left out); `POST` plans it (`dry_run`) or applies it in one transaction, audited as
/// one change set. The document carries literal secrets only: references (`${VAR}`, files) are the
/// CLI's to resolve on the admin's machine, never the server's.
struct PolicyController {
    let env: AdminEnvironment
    let cipher: CredentialCipher
    let resources: ResourcesController
    let clients: UpstreamClients
    let maxBodyBytes: Int

    func register(on admin: RouterGroup<AppRequestContext>) {
        admin.get("tenants/{tenant_id}/policy", use: export)
        admin.post("tenants/{tenant_id}/policy", use: apply)
    }

    func state(_ tenantId: String) async throws -> PolicyState {
        let now = env.now
        guard let state = try await env.reads.read({ conn in try PolicyState.read(conn, tenantId: tenantId, now: now) }) else {
            throw ProblemError.notFound("tenant '\(tenantId.prefix(64))'")
        }
        return state
    }

    @Sendable func export(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let state = try await state(tenantId)
        var document = state.document().objectMembers ?? []
        // Alert channel URLs (a Slack webhook URL is a secret) go out as digests only.
        document = document.map { k, v in
            guard k == "projects", let projects = v.arrayValue else { return (k, v) }
            return (k, .array(projects.map { Self.digestingChannels($0, cipher: cipher) }))
        }
        return JSONResponse.make(["policy": .object(document)])
    }

    static func digestingChannels(_ project: JSONValue, cipher: CredentialCipher) -> JSONValue {
        .object(
            (project.objectMembers ?? []).map { k, v in
                guard k == "alert_channels", let list = v.arrayValue else { return (k, v) }
                return (
                    k,
                    .array(
                        list.map { c in
                            .object([("format", c["format"] ?? .null), ("url_digest", .string(cipher.digest(c["url"]?.stringValue ?? "")))])
                        })
                )
            })
    }

    @Sendable func apply(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try context.tenantScope(env.catalog)
        let who = try context.admin
        let body = try await request.jsonObject(limit: maxBodyBytes, timeoutMs: env.bodyTimeoutMs)
        let (policy, dryRun, prune, source) = try validating { () throws -> (ObjectReader, Bool, Bool, JSONValue) in
            try body.rejectUnknown(["policy", "dry_run", "prune", "source"])
            let policy = try body.required("policy") { v, name in try ObjectReader(v, path: "") }
            try policy.rejectUnknown(["tenant", "settings", "pricing", "pools", "projects"])
            let source = try body.optional("source") { v, name -> JSONValue in
                let r = try ObjectReader(v, path: name)
                try r.rejectUnknown(["file", "digest"])
                return .compact([
                    ("file", try r.optional("file", Field.string(maxLength: 500)).map(JSONValue.string)),
                    ("digest", try r.optional("digest", Field.string(maxLength: 200)).map(JSONValue.string)),
                ])
            }
            return (policy, try body.optional("dry_run", Field.bool) ?? false, try body.optional("prune", Field.bool) ?? false, source ?? [:])
        }
        let current = try await state(tenantId)
        if let name = policy["tenant"]?.stringValue, name != current.tenant.name {
            throw ProblemError.invalid("tenant", "the file is for tenant '\(name.prefix(100))', not '\(current.tenant.name)'")
        }
        var planner = PolicyPlanner(
            current: current, now: env.now, who: who, prune: prune, cipher: cipher, resources: resources, clients: clients)
        try await planner.plan(policy)
        let plan = planner
        var summary: [(String, JSONValue)] = []
        for action in ["create", "update", "archive", "revoke", "delete"] {
            summary.append((action, .int(Int64(plan.changes.filter { $0.action.rawValue == action }.count))))
        }
        var answer: [(String, JSONValue)] = [
            ("dry_run", .bool(dryRun)), ("prune", .bool(prune)), ("summary", .object(summary)), ("changes", .array(plan.changes.map { $0.json() })),
        ]
        if dryRun || plan.changes.isEmpty {
            answer.append(("applied", .bool(false)))
            return JSONResponse.make(.object(answer))
        }
        let ops = plan.ops
        let counts = summary
        let (planned, now) = (current.fingerprint, env.now)
        do {
            try await env.changes.write { conn in
                // Planned against this state: if another change landed in between, nothing is applied.
                guard try PolicyState.read(conn, tenantId: tenantId, now: now)?.fingerprint == planned else {
                    throw ProblemError.conflict("the tenant changed while the policy was being planned; nothing was applied, plan again")
                }
                // A child may come before its parent in the file: references are checked at the commit.
                try conn.deferForeignKeys()
                for op in ops { try op(conn) }
                try env.audit(
                    conn, who, tenant: tenantId, "policy.apply", "tenant", tenantId,
                    .object([("source", source), ("prune", .bool(prune)), ("summary", .object(counts))]))
            }
        } catch is DuplicateName {
            // Names of revoked resources stay taken (the ledger refers to them): nothing was applied.
            throw ProblemError.conflict("the policy names an object whose name is taken (a revoked resource keeps its name); nothing was applied")
        }
        answer.append(("applied", .bool(true)))
        answer.append(("issued", .array(plan.issued)))
        return JSONResponse.make(.object(answer))
    }
}

/// Works out what a policy document changes against the tenant's current state, checking every
/// part of it first (errors name the document path, such as `projects.eng.budget.fallback.model`),
/// and prepares the writes that one transaction then runs.
struct PolicyPlanner {
    let current: PolicyState
    let now: Int64
    let who: AdminIdentity
    let prune: Bool
    let cipher: CredentialCipher
    let resources: ResourcesController
    let clients: UpstreamClients

    var changes: [PolicyChange] = []
    var ops: [@Sendable (StoreConnection) throws -> Void] = []
    /// Secrets issued by the apply (keys, seats, webhook signing secrets): answered once, never stored.
    /// New alert channels, checked against the egress policy before the apply.
    var newChannels: [(String, String)] = []
    var issued: [JSONValue] = []

    init(
        current: PolicyState, now: Int64, who: AdminIdentity, prune: Bool, cipher: CredentialCipher, resources: ResourcesController,
        clients: UpstreamClients
    ) {
        self.current = current
        self.now = now
        self.who = who
        self.prune = prune
        self.cipher = cipher
        self.resources = resources
        self.clients = clients
    }

    var tenantId: String { current.tenant.id }

    mutating func plan(_ policy: ObjectReader) async throws {
        let settings = try validating { try planSettings(policy["settings"]) }
        let pricing = try validating { try planPricing(policy["pricing"], settings: settings) }
        let pools = try await planPools(policy["pools"])
        try validating { try planProjects(policy["projects"], pools: pools, pricing: pricing, settings: settings) }
        try await checkChannelEgress()
    }

    /// Prefixes a field error's path with `prefix` (nested readers already carry it).
    static func within<T>(_ prefix: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as FieldError {
            throw FieldError(e.field.hasPrefix(prefix) ? e.field : "\(prefix).\(e.field)", e.message)
        }
    }

    static func list(_ value: JSONValue?, _ name: String) throws -> [JSONValue] {
        guard let value, !value.isNull else { return [] }
        guard let list = value.arrayValue else { throw FieldError(name, "must be a list, got \(value.kindName)") }
        return list
    }

    static func object(_ value: JSONValue, _ name: String, key: String) throws -> (String, ObjectReader) {
        let r = try ObjectReader(value, path: name)
        guard let id = r[key]?.stringValue, !id.isEmpty else { throw FieldError(r.fieldName(key), "is required") }
        return (id, r)
    }

}

extension String {
    func replacingSuffix(_ suffix: String, with other: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) + other : self
    }
}
