// One file for now: the controller and its planner share the plan state (changes, ops, issued secrets);
// moving the planner's sections (settings, resources, projects) into extensions of their own is the next clean-up.
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
                try conn.execute("PRAGMA defer_foreign_keys = ON")
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

    private(set) var changes: [PolicyChange] = []
    private(set) var ops: [@Sendable (SQLiteConnection) throws -> Void] = []
    /// Secrets issued by the apply (keys, seats, webhook signing secrets): answered once, never stored.
    private(set) var issued: [JSONValue] = []

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

    // MARK: settings and pricing

    mutating func planSettings(_ value: JSONValue?) throws -> TenantSettings {
        let old = current.tenant.settings
        guard let value, !value.isNull else { return old }
        guard value.objectMembers != nil else { throw FieldError("settings", "must be an object, got \(value.kindName)") }
        let merged = JSONMergePatch.apply(value, to: old.json())
        let desired = try TenantSettings.converter(merged, "settings")
        let fields = PolicyChange.diff(old.json(), desired.json())
        if !fields.isEmpty {
            changes.append(PolicyChange(action: .update, kind: "settings", name: current.tenant.name, path: "settings", fields: fields))
            var tenant = current.tenant
            tenant.settings = desired
            tenant.updatedAt = now
            ops.append { [tenant] conn in try conn.updateTenant(tenant) }
        }
        return desired
    }

    /// The pricing table after the apply.
    mutating func planPricing(_ value: JSONValue?, settings: TenantSettings) throws -> PricingTable {
        var table = current.pricing
        if value != nil {
            var named: Set<String> = []
            for (i, v) in try Self.list(value, "pricing").enumerated() {
                let model = v["model"]?.stringValue ?? "\(i)"
                let entry = try PricingController.entry(v, "pricing.\(model)")
                guard named.insert(entry.model).inserted else { throw FieldError("pricing.\(model)", "lists the model more than once") }
                let tenantId = tenantId
                let now = now
                if let old = current.pricing.first(where: { $0.model == entry.model }) {
                    let fields = PolicyChange.diff(old.price.json(), entry.price.json())
                    if fields.isEmpty { continue }
                    changes.append(PolicyChange(action: .update, kind: "price", name: entry.model, path: "pricing.\(model)", fields: fields))
                    table.removeAll { $0.model == entry.model }
                } else {
                    changes.append(
                        PolicyChange(
                            action: .create, kind: "price", name: entry.model, path: "pricing.\(model)",
                            fields: PolicyChange.created(entry.price.json())))
                }
                table.append(entry)
                ops.append { conn in try conn.upsertPriceEntry(tenantId: tenantId, entry, at: now) }
            }
            if prune {
                for old in current.pricing where !named.contains(old.model) {
                    changes.append(PolicyChange(action: .delete, kind: "price", name: old.model, path: "pricing.\(old.model)"))
                    table.removeAll { $0.model == old.model }
                    let tenantId = tenantId
                    ops.append { conn in _ = try conn.deletePriceEntry(tenantId: tenantId, model: old.model) }
                }
            }
        }
        return PricingTable(entries: table, defaultPrice: settings.defaultPrice, toolCallMicros: settings.toolCallPriceMicros)
    }

    // MARK: pools and resources

    /// Pools after the apply, by name (new ones get their ids here).
    mutating func planPools(_ value: JSONValue?) async throws -> [Pool] {
        var pools = current.pools
        var byName: [String: Resource] = [:]
        for r in current.resources { byName[r.name] = r }
        var named: Set<String> = []
        let entries = try validating { try Self.list(value, "pools") }
        // Pools first, so a resource may sit in a pool the same file creates.
        var listed: [(String, ObjectReader)] = []
        for v in entries {
            let (name, r) = try validating { try Self.object(v, "pools", key: "name") }
            let path = "pools.\(name)"
            let pool = try validating { () throws -> ObjectReader in
                let pool = try ObjectReader(v, path: path)
                try pool.rejectUnknown(["name", "description", "resources"])
                return pool
            }
            _ = r
            listed.append((name, pool))
            if current.pool(named: name) == nil {
                let p = Pool(
                    id: Identifier.make("pool"), tenantId: tenantId, name: name, description: pool["description"]?.stringValue ?? "", createdAt: now,
                    updatedAt: now)
                pools.append(p)
                changes.append(PolicyChange(action: .create, kind: "pool", name: name, path: path))
                ops.append { conn in try conn.insertPool(p) }
            }
        }
        for (poolName, pool) in listed {
            guard let poolId = pools.first(where: { $0.name == poolName })?.id else { continue }
            for v in try validating({ try Self.list(pool["resources"], "pools.\(poolName).resources") }) {
                let (name, r) = try validating { try Self.object(v, "pools.\(poolName).resources", key: "name") }
                let path = "pools.\(poolName).resources.\(name)"
                guard named.insert(name).inserted else { throw ProblemError.invalid(path, "names a resource that the file already lists") }
                var members = r.members.filter { $0.0 != "pool" }
                members.append(("pool_id", .string(poolId)))
                if let old = byName[name] {
                    try await planResourceUpdate(old, ObjectReader(members: members, path: ""), path: path, pools: pools)
                } else {
                    try await planResourceCreate(ObjectReader(members: members, path: ""), path: path, pools: pools)
                }
            }
        }
        if prune {
            for old in current.resources where !named.contains(old.name) {
                changes.append(
                    PolicyChange(
                        action: .revoke, kind: "resource", name: old.name, path: "pools.\(current.poolName(old.poolId)).resources.\(old.name)"))
                var revoked = old
                revoked.state = .revoked
                revoked.stateReason = "revoked by a policy prune (\(who.actor))"
                revoked.stateChangedAt = now
                revoked.updatedAt = now
                ops.append { [revoked] conn in try conn.updateResource(revoked) }
            }
        }
        return pools
    }

    /// Runs a resource check, naming the field inside the document.
    static func prefixed<T>(_ path: String, _ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let e as ProblemError where e.field != nil {
            throw ProblemError.invalid("\(path).\(e.field!)", String(e.detail.drop(while: { $0 != ":" }).dropFirst(2)))
        } catch let e as FieldError {
            throw ProblemError.invalid("\(path).\(e.field)", e.message)
        }
    }

    mutating func planResourceCreate(_ body: ObjectReader, path: String, pools: [Pool]) async throws {
        let (resources, tenantId, who) = (self.resources, self.tenantId, self.who)
        let new = try await Self.prefixed(path) { try await resources.prepare(body, tenantId: tenantId, pools: pools, who: who) }
        var fields = PolicyChange.created(PolicyState.resourceJSON(new.resource))
        if new.digest != nil { fields.append(.init(name: "credential", old: nil, new: nil, secret: true)) }
        changes.append(PolicyChange(action: .create, kind: "resource", name: new.resource.name, path: path, fields: fields))
        ops.append { conn in try new.insert(conn) }
    }

    mutating func planResourceUpdate(_ old: Resource, _ body: ObjectReader, path: String, pools: [Pool]) async throws {
        let resources = self.resources
        if let kind = body["kind"]?.stringValue, kind != old.kind.rawValue {
            throw ProblemError.invalid("\(path).kind", "cannot change from \(old.kind.rawValue); give the new resource another name")
        }
        let settings = ObjectReader(members: body.members.filter { !["kind", "credential", "offer_id", "oauth"].contains($0.0) }, path: "")
        let offer = old.offerId.flatMap { resources.env.catalog.current.offers[$0] }
        var updated = old
        try await Self.prefixed(path) {
            let merged = try ObjectReader(JSONMergePatch.apply(.object(settings.members), to: ResourcesController.writableJSON(old)))
            try merged.rejectUnknown(ResourcesController.writable)
            try resources.read(merged, into: &updated, tenantId: old.tenantId, pools: pools, offer: offer)
            if updated.leaseMode != old.leaseMode || updated.plan != old.plan || updated.attestation != old.attestation {
                try ResourcesController.checkTerms(updated)
            }
        }
        var fields = PolicyChange.diff(PolicyState.resourceJSON(old), PolicyState.resourceJSON(updated))
        var credential: (ciphertext: [UInt8], hint: String, digest: String)?
        if let secret = body["credential"]?.stringValue {
            let digest = cipher.digest(secret)
            if digest != current.digests[old.id] {
                guard old.oauth == nil, old.kind != .overflow, old.leaseMode != .passthrough else {
                    throw ProblemError.invalid(
                        "\(path).credential", "this resource takes no credential here; rotate its secrets with POST .../rotate-credential")
                }
                try await Self.prefixed(path) { try validating { try ResourcesController.checkCredential(secret, provider: old.provider) } }
                credential = (try cipher.seal(secret, context: "resource:\(old.id)"), ResourcesController.hint((secret, old.provider)), digest)
                fields.append(.init(name: "credential", old: nil, new: nil, secret: true))
            }
        }
        if fields.isEmpty { return }
        let upstreamChanged =
            updated.baseURL != old.baseURL || updated.provider != old.provider || updated.wireFormat != old.wireFormat
            || updated.families != old.families
        if upstreamChanged {
            updated.egressExempt = who.isOperator
            if !who.isOperator { try await Self.prefixed(path) { try await resources.checkEgress(updated) } }
        }
        let restart = (upstreamChanged || credential != nil) && !updated.manualHold
        updated.updatedAt = now
        if restart {
            updated.state = .pending
            updated.stateReason = "changed by a policy; waiting for the health verifier"
            updated.stateChangedAt = now
            updated.coolingUntil = nil
        }
        changes.append(PolicyChange(action: .update, kind: "resource", name: old.name, path: path, fields: fields))
        let now = now
        ops.append { [updated, credential] conn in
            try conn.updateResource(updated)
            if let credential {
                try conn.setResourceCredential(
                    tenantId: updated.tenantId, id: updated.id, ciphertext: credential.ciphertext, hint: credential.hint, digest: credential.digest,
                    at: now)
            }
            if restart { try conn.restartVerification(id: updated.id) }
        }
    }

    // MARK: projects, their keys, seats and alert channels

    mutating func planProjects(_ value: JSONValue?, pools: [Pool], pricing: PricingTable, settings: TenantSettings) throws {
        let entries = try Self.list(value, "projects")
        // First the names, ids and parents of every project in the file, so the hierarchy can be
        // checked whole (a parent may come after its child in the file).
        var ids: [String: String] = [:]
        // Every project id, existing or in the file, with its parent (`.some(nil)` for a root).
        var parents: [String: String?] = [:]
        for p in current.projects { parents[p.id] = .some(p.parentId) }
        var readers: [(String, ObjectReader)] = []
        for v in entries {
            let (name, r) = try Self.object(v, "projects", key: "name")
            guard ids[name] == nil else { throw FieldError("projects.\(name)", "names a project that the file already lists") }
            ids[name] = current.project(named: name)?.id ?? Identifier.make("prj")
            readers.append((name, try ObjectReader(v, path: "projects.\(name)")))
        }
        func idOf(_ name: String) -> String? { ids[name] ?? current.project(named: name)?.id }
        for (name, r) in readers {
            if let parent = r["parent"], !parent.isNull {
                guard let parentName = parent.stringValue else { throw FieldError(r.fieldName("parent"), "must be a project name") }
                guard let parentId = idOf(parentName) else {
                    throw FieldError(r.fieldName("parent"), "no project '\(parentName)' in this file or tenant")
                }
                parents[ids[name]!] = .some(parentId)
            } else {
                parents[ids[name]!] = .some(nil)
            }
        }
        let channelKeys = ["alert_channels", "keys", "seats"]
        var keyed: [String: ProjectKey] = [:]
        for k in current.keys { keyed["\(k.projectId)\u{0}\(k.name)"] = k }
        var seated: [String: Seat] = [:]
        for s in current.seats { seated["\(s.projectId)\u{0}\(s.holder)"] = s }
        var keptKeys: Set<String> = []
        var keptSeats: Set<String> = []
        var keptChannels: Set<String> = []
        for (name, r) in readers {
            let id = ids[name]!
            let path = "projects.\(name)"
            try r.rejectUnknown(
                ProjectsController.writable.subtracting(["name", "parent_id", "pool_ids"]).union(["name", "parent", "pools"]).union(channelKeys))
            var members = r.members.filter { !(["parent", "pools"] + channelKeys).contains($0.0) }
            if let parentId = parents[id] ?? nil { members.append(("parent_id", .string(parentId))) }
            var poolIds: [JSONValue] = []
            for (i, v) in try Self.list(r["pools"], r.fieldName("pools")).enumerated() {
                guard let poolName = v.stringValue else { throw FieldError("\(path).pools[\(i)]", "must be a pool name") }
                guard let pool = pools.first(where: { $0.name == poolName }) else {
                    throw FieldError("\(path).pools[\(i)]", "no pool '\(poolName)' in this file or tenant (define it under pools)")
                }
                poolIds.append(.string(pool.id))
            }
            if !poolIds.isEmpty { members.append(("pool_ids", .array(poolIds))) }
            let old = current.projects.first { $0.id == id }
            var project = old ?? Project(id: id, tenantId: tenantId, name: name, createdAt: now, updatedAt: now)
            project.status = .active
            do {
                try ProjectsController.read(
                    ObjectReader(members: members, path: path), into: &project,
                    parent: { pid in parents[pid].map { Project(id: pid, tenantId: "", name: "", parentId: $0) } },
                    hasPool: { pid in pools.contains { $0.id == pid } })
            } catch let e as FieldError {
                throw FieldError(e.field.replacingSuffix(".parent_id", with: ".parent").replacingSuffix(".pool_ids", with: ".pools"), e.message)
            }
            try checkPriced(project.allowedModels, path: "\(path).allowed_models", pricing: pricing)
            if let fallback = project.budget.fallback {
                try checkPriced([fallback.model], path: "\(path).budget.fallback.model", pricing: pricing, single: true)
            }
            let parentName = project.parentId.flatMap { pid in ids.first { $0.value == pid }?.key ?? current.projectName(pid) }
            let poolNames = project.poolIds.compactMap { pid in pools.first { $0.id == pid }?.name }
            if let old {
                var fields = PolicyChange.diff(
                    PolicyState.projectJSON(old, parent: current.projectName(old.parentId), pools: old.poolIds.map(current.poolName)),
                    PolicyState.projectJSON(project, parent: parentName, pools: poolNames))
                if old.status != .active { fields.append(.init(name: "status", old: .string(old.status.rawValue), new: "active")) }
                if !fields.isEmpty {
                    project.updatedAt = now
                    changes.append(PolicyChange(action: .update, kind: "project", name: name, path: path, fields: fields))
                    ops.append { [project] conn in try conn.updateProject(project) }
                }
            } else {
                changes.append(
                    PolicyChange(
                        action: .create, kind: "project", name: name, path: path,
                        fields: PolicyChange.created(PolicyState.projectJSON(project, parent: parentName, pools: poolNames))))
                ops.append { [project] conn in try conn.insertProject(project) }
            }
            try planKeys(r["keys"], project: project, path: path, existing: keyed, kept: &keptKeys, pricing: pricing)
            try planSeats(r["seats"], project: project, path: path, settings: settings, existing: seated, kept: &keptSeats, pricing: pricing)
            try planChannels(r["alert_channels"], project: project, path: path, kept: &keptChannels)
        }
        guard prune else { return }
        for p in current.projects where ids[p.name] == nil && p.status == .active {
            changes.append(PolicyChange(action: .archive, kind: "project", name: p.name, path: "projects.\(p.name)"))
            var archived = p
            archived.status = .archived
            archived.updatedAt = now
            ops.append { [archived] conn in try conn.updateProject(archived) }
        }
        for k in current.keys where !keptKeys.contains(k.id) {
            changes.append(
                PolicyChange(action: .revoke, kind: "key", name: k.name, path: "projects.\(current.projectName(k.projectId) ?? "").keys.\(k.name)"))
            var revoked = k
            revoked.revokedAt = now
            ops.append { [revoked] conn in try conn.updateProjectKey(revoked) }
        }
        for s in current.seats where !keptSeats.contains(s.id) {
            changes.append(
                PolicyChange(
                    action: .revoke, kind: "seat", name: s.holder, path: "projects.\(current.projectName(s.projectId) ?? "").seats.\(s.holder)"))
            var revoked = s
            revoked.revokedAt = now
            revoked.updatedAt = now
            ops.append { [revoked] conn in try conn.updateSeat(revoked) }
        }
        for w in current.webhooks where w.projectId != nil && !keptChannels.contains(w.id) {
            changes.append(
                PolicyChange(
                    action: .delete, kind: "alert_channel", name: "\(w.format.rawValue) \(w.secretHint)",
                    path: "projects.\(current.projectName(w.projectId) ?? "").alert_channels"))
            let tenantId = tenantId
            ops.append { conn in _ = try conn.deleteWebhook(tenantId: tenantId, id: w.id) }
        }
    }

    /// Exact model names must have a price (a pattern of the table, or the tenant's default price).
    func checkPriced(_ models: [String], path: String, pricing: PricingTable, single: Bool = false) throws {
        for (i, m) in models.enumerated() where !m.contains("*") && pricing.price(for: m) == nil {
            throw FieldError(
                single ? path : "\(path)[\(i)]",
                "model '\(m)' is missing from the pricing table and the tenant has no default price; add it under pricing")
        }
    }

    mutating func planKeys(
        _ value: JSONValue?, project: Project, path: String, existing: [String: ProjectKey], kept: inout Set<String>, pricing: PricingTable
    ) throws {
        var named: Set<String> = []
        for v in try Self.list(value, "\(path).keys") {
            let (name, r) = try Self.object(v, "\(path).keys", key: "name")
            let keyPath = "\(path).keys.\(name)"
            guard named.insert(name).inserted else { throw FieldError(keyPath, "names a key that the project already lists") }
            var key = ProjectKey(
                id: Identifier.make("key"), tenantId: tenantId, projectId: project.id, name: name, prefix: "", createdBy: who.actor, createdAt: now)
            if let old = existing["\(project.id)\u{0}\(name)"] { key = old }
            try Self.within(keyPath) { try ProjectKeysController.readKey(ObjectReader(members: r.members, path: keyPath), into: &key) }
            try checkPriced(key.allowedModels, path: "\(keyPath).allowed_models", pricing: pricing)
            if let old = existing["\(project.id)\u{0}\(name)"] {
                kept.insert(old.id)
                let fields = PolicyChange.diff(PolicyState.keyJSON(old), PolicyState.keyJSON(key))
                if fields.isEmpty { continue }
                changes.append(PolicyChange(action: .update, kind: "key", name: name, path: keyPath, fields: fields))
                ops.append { [key] conn in try conn.updateProjectKey(key) }
            } else {
                let (secret, digest) = issue(.projectKey, kind: "key", project: project, label: ("name", name))
                key.prefix = SecretDigest.displayPrefix(secret)
                changes.append(
                    PolicyChange(action: .create, kind: "key", name: name, path: keyPath, fields: PolicyChange.created(PolicyState.keyJSON(key))))
                ops.append { [key] conn in try conn.insertProjectKey(key, digest: digest) }
            }
        }
    }

    /// A new key or seat key: answered once in `issued`; only its digest is stored.
    mutating func issue(_ secretKind: SecretKind, kind: String, project: Project, label: (String, String)) -> (secret: String, digest: String) {
        let secret = secretKind.generate()
        issued.append(.object([("kind", .string(kind)), ("project", .string(project.name)), (label.0, .string(label.1)), ("key", .string(secret))]))
        return (secret, SecretDigest.of(secret))
    }

    mutating func planSeats(
        _ value: JSONValue?, project: Project, path: String, settings: TenantSettings, existing: [String: Seat], kept: inout Set<String>,
        pricing: PricingTable
    ) throws {
        var tenant = current.tenant
        tenant.settings = settings
        var named: Set<String> = []
        for v in try Self.list(value, "\(path).seats") {
            let (holder, r) = try Self.object(v, "\(path).seats", key: "holder")
            let seatPath = "\(path).seats.\(holder)"
            guard named.insert(holder).inserted else { throw FieldError(seatPath, "names a holder that the project already lists") }
            let old = existing["\(project.id)\u{0}\(holder)"]
            var seat =
                old
                ?? Seat(
                    id: Identifier.make("seat"), tenantId: tenantId, projectId: project.id, holder: holder, prefix: "", expiresAt: 0,
                    createdBy: who.actor, createdAt: now, updatedAt: now)
            let (tenantCopy, now) = (tenant, self.now)
            try Self.within(seatPath) {
                let reader = ObjectReader(members: r.members, path: seatPath)
                try reader.rejectUnknown(SeatsController.writable)
                try SeatsController.read(reader, into: &seat, project: project, tenant: tenantCopy, now: now, creating: old == nil)
            }
            try checkPriced(seat.allowedModels, path: "\(seatPath).allowed_models", pricing: pricing)
            if let old {
                kept.insert(old.id)
                let fields = PolicyChange.diff(PolicyState.seatJSON(old), PolicyState.seatJSON(seat))
                if fields.isEmpty { continue }
                seat.updatedAt = now
                changes.append(PolicyChange(action: .update, kind: "seat", name: holder, path: seatPath, fields: fields))
                ops.append { [seat] conn in try conn.updateSeat(seat) }
            } else {
                let (secret, digest) = issue(.seatKey, kind: "seat", project: project, label: ("holder", holder))
                seat.prefix = SecretDigest.displayPrefix(secret)
                changes.append(
                    PolicyChange(
                        action: .create, kind: "seat", name: holder, path: seatPath, fields: PolicyChange.created(PolicyState.seatJSON(seat))))
                ops.append { [seat] conn in try conn.insertSeat(seat, digest: digest) }
            }
        }
    }

    /// Channels are matched by format and URL digest; the URL (a Slack webhook URL is a secret) is
    /// never shown.
    mutating func planChannels(_ value: JSONValue?, project: Project, path: String, kept: inout Set<String>) throws {
        let existing = current.webhooks.filter { $0.projectId == project.id }
        for (i, v) in try Self.list(value, "\(path).alert_channels").enumerated() {
            let channelPath = "\(path).alert_channels[\(i)]"
            let r = try ObjectReader(v, path: channelPath)
            try r.rejectUnknown(["format", "url"])
            let format = try r.optional("format", WebhooksController.formatField) ?? .json
            let url = try r.required("url", Field.url)
            if let match = existing.first(where: { $0.format == format && $0.url == url && !kept.contains($0.id) }) {
                kept.insert(match.id)
                continue
            }
            let secret = "whsec_" + Identifier.random(32)
            let w = Webhook(
                id: Identifier.make("wh"), tenantId: tenantId, projectId: project.id, url: url, format: format, secretHint: "…" + secret.suffix(4),
                createdAt: now, updatedAt: now)
            let ciphertext = try cipher.seal(secret, context: "webhook:\(w.id)")
            changes.append(
                PolicyChange(
                    action: .create, kind: "alert_channel", name: "\(format.rawValue) \(ResourcesController.hint((url, .openai)))", path: channelPath,
                    fields: [.init(name: "format", old: nil, new: .string(format.rawValue)), .init(name: "url", old: nil, new: nil, secret: true)]))
            if format == .json {
                issued.append(.object([("kind", "webhook_secret"), ("project", .string(project.name)), ("secret", .string(secret))]))
            }
            newChannels.append((channelPath, url))
            ops.append { conn in try conn.insertWebhook(w, secretCiphertext: ciphertext) }
        }
    }

    private var newChannels: [(String, String)] = []

    /// A tenant admin's channel URLs must pass the egress policy, like the webhook API's.
    func checkChannelEgress() async throws {
        guard !who.isOperator else { return }
        for (path, url) in newChannels {
            do { try await clients.validate(url) } catch {
                throw ProblemError.invalid("\(path).url", "\(error.description); webhooks must use a public address")
            }
        }
    }
}

extension String {
    func replacingSuffix(_ suffix: String, with other: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) + other : self
    }
}
