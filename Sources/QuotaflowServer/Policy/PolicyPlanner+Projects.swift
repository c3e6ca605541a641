import HashTreeCollections
import Hummingbird
import QuotaflowCore
import QuotaflowStore

extension PolicyPlanner {
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
            let (name, _) = try Self.object(v, "projects", key: "name")
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
